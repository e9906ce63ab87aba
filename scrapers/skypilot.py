"""Parsing of SkyPilot's public GPU catalog CSVs (skypilot-org/skypilot-catalog, `catalogs/v7`).

Lambda, RunPod and Vast prices come from these files; each cloud writes the same columns in a
different order and with its own quirks, which the three source modules pass in as small hooks.
"""

from __future__ import annotations

import ast
import csv
import io
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from scrapers.base import LayoutError, bodies, note_bad_row, to_decimal
from scrapers.gpu_names import canonical_gpu, gpu_memory_gb, within_gpu_hour_bound
from warehouse.records import PriceRecord, RawCapture

CATALOG_BASE_URL = (
    "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v7"
)
REQUIRED_COLUMNS = frozenset(
    {"InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB", "Price",
     "SpotPrice", "Region"}
)  # fmt: skip
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogRules:
    """What differs between clouds' catalogs.

    `gpu_name(row)` is the name looked up in the GPU table (the instance type often says more
    than AcceleratorName: Lambda's "A100" rows are "a100_sxm4" or "a100"); `region(row)` is the
    region key; `memory_gb(row, info)` is the per-GPU memory the row reports.
    """

    source: str
    provider: str
    gpu_name: Callable[[dict[str, str]], str]
    region: Callable[[dict[str, str]], str]
    memory_gb: Callable[[dict[str, str], dict | None], float | None]
    # True where the catalog is known to write some rows' SpotPrice and Price the wrong way
    # round (see scrapers/runpod.py): a pair with spot above on-demand is then put in order.
    order_spot_pair: bool = False


@lru_cache(maxsize=1024)  # a catalog repeats one GpuInfo text per instance type in every region
def gpu_info(text: str) -> dict | None:
    """SkyPilot's GpuInfo cell: a Python-repr dict (single quotes), not JSON. None if unreadable.

    Cached: callers must not mutate the returned dict.
    """
    if not text or not text.startswith("{"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


def gpu_size_mib(info: dict | None) -> float | None:
    """`Gpus[0].MemoryInfo.SizeInMiB` from a GpuInfo dict, or None."""
    try:
        size = info["Gpus"][0]["MemoryInfo"]["SizeInMiB"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None
    return float(size) if isinstance(size, int | float) and size > 0 else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def read_rows(body: bytes, source: str) -> list[dict[str, str]]:
    """The catalog's rows; LayoutError when it is not the CSV we know."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{source}: catalog is not UTF-8: {exc}") from None
    # newline="" lets the csv module take CRLF line ends (SkyPilot writes them) as one line end.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
    if missing:
        raise LayoutError(f"{source}: catalog lacks columns {', '.join(sorted(missing))}")
    return list(reader)


def parse_catalog(raw: list[RawCapture] | bytes, rules: CatalogRules) -> list[PriceRecord]:
    """Price records from one or more catalog CSVs: on-demand and spot per instance and region.

    Rows without an accelerator (CPU instances) are skipped. A zero, empty, negative or
    non-numeric price is not a price (Vast writes SpotPrice 0.00 for "no spot market"). When
    the same instance type and region appear more than once (RunPod lists 2x_B200 twice), the
    lowest price wins: it is the offer a buyer would take, and it does not depend on row order.
    """
    best: dict[tuple[str, str, str], PriceRecord] = {}
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        for row in read_rows(body, rules.source):
            accelerator = (row.get("AcceleratorName") or "").strip()
            if not accelerator:
                dropped["cpu instance"] += 1
                continue
            count = _number(row.get("AcceleratorCount") or "")
            if not count:
                dropped["no gpu count"] += 1
                continue
            info = gpu_info(row.get("GpuInfo") or "")
            reported_gb = rules.memory_gb(row, info)
            canonical = canonical_gpu(rules.gpu_name(row), rules.source, reported_gb)
            cells = {"Price": row.get("Price"), "SpotPrice": row.get("SpotPrice")}
            if rules.order_spot_pair:
                cells = _ordered_pair(cells, dropped)
            for column, term in (("Price", "on_demand"), ("SpotPrice", "spot")):
                price = to_decimal(cells[column])
                if price is None or price == 0:
                    if (cells[column] or "").strip() not in ("", "0", "0.0", "0.00"):
                        note_bad_row()  # a cell that should hold a price but holds junk
                    dropped[f"{column} not a price"] += 1
                    continue
                if not within_gpu_hour_bound(price, count):
                    dropped["absurd magnitude"] += 1
                    continue
                record = PriceRecord(
                    source=rules.source,
                    kind="gpu_instance",
                    provider=rules.provider,
                    sku=row["InstanceType"].strip(),
                    region=rules.region(row),
                    term=term,
                    unit="usd_per_hour",
                    price=price,
                    gpu_model=canonical,
                    gpu_name_source=accelerator,
                    gpu_count=count,
                    gpu_memory_gb=gpu_memory_gb(canonical, reported_gb),
                    vcpus=_number(row.get("vCPUs") or ""),
                    ram_gb=_number(row.get("MemoryGiB") or ""),
                )
                key = (record.sku, record.region, term)
                kept = best.get(key)
                if kept is not None:
                    dropped["duplicate row"] += 1
                if kept is None or record.price < kept.price:
                    best[key] = record
    if dropped:
        log.info("%s: skipped %s", rules.source, dict(dropped))
    return sorted(best.values(), key=lambda r: (r.sku, r.region, r.term))


def _ordered_pair(cells: dict, dropped: Counter) -> dict:
    """SpotPrice and Price with the lower one as spot, counting the rows that were exchanged."""
    spot, on_demand = to_decimal(cells["SpotPrice"]), to_decimal(cells["Price"])
    if spot and on_demand and spot > on_demand:
        dropped["spot and on-demand exchanged"] += 1
        return {"Price": cells["SpotPrice"], "SpotPrice": cells["Price"]}
    return cells


def mib_to_gb(mib: float | None) -> float | None:
    return None if mib is None else round(mib / 1024, 1)


def per_gpu_total(info: dict | None, count: str) -> float | None:
    """Per-GPU GB when GpuInfo's SizeInMiB is the total over all GPUs (Vast)."""
    size, n = gpu_size_mib(info), _number(count)
    return mib_to_gb(size / n) if size and n else None
