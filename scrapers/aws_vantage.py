"""AWS GPU instance prices in every region, from instances.vantage.sh data as exported by the
public tsaol/aws-gpu repository (`data/all_gpu_instances.js`, MIT per its README).

The file is a JavaScript array literal (`const allGPUInstances = [...];`) that is plain JSON
inside. Per instance type and region it gives the Linux on-demand price and, where AWS sells
one, the 1-year standard no-upfront reserved rate (the exporter reads vantage's
`yrTerm1Standard.noUpfront`), both in USD per instance-hour. A dated commit of the file is one
observation: the two recorded versions (2025-11-30, 2026-01-21) are a real price history.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import datetime

from scrapers.base import LayoutError, bodies, source_url, to_decimal
from scrapers.gpu_names import gpu_memory_gb, instance_gpus, within_gpu_hour_bound
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "aws_vantage"
DEFAULT_URL = "https://raw.githubusercontent.com/tsaol/aws-gpu/main/data/all_gpu_instances.js"
log = logging.getLogger(__name__)

# China regions are priced in CNY in AWS's files, and the export writes those numbers unchanged
# (g4dn.xlarge cn-north-1 5.223 next to us-east-1 0.526, 2025-11-30): stored as CNY, never USD.
_CNY_REGION_PREFIX = "cn-"
# (vantage key, our term). Observed in both recorded versions of the file.
_TERMS = (("onDemand", "on_demand"), ("reserved", "reserved_1y"))
_UPDATED = re.compile(rb"^// Last updated: (\d{4}-\d{2}-\d{2})", re.MULTILINE)


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def last_updated(body: bytes) -> str | None:
    """The file's own "// Last updated: YYYY-MM-DD" line, the day its prices were exported."""
    match = _UPDATED.search(body[:1024])
    return match.group(1).decode() if match else None


def _instances(body: bytes) -> list:
    start, end = body.find(b"["), body.rfind(b"]")
    if start < 0 or end < start:
        raise LayoutError("aws_vantage: no array literal in the file")
    try:
        data = json.loads(body[start : end + 1])
    except ValueError as exc:
        raise LayoutError(f"aws_vantage: the array is not JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise LayoutError("aws_vantage: expected an array of instance objects")
    return data


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: dict[tuple[str, str, str], PriceRecord] = {}
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        instances = _instances(body)
        if instances and not any("pricing" in x for x in instances):
            raise LayoutError("aws_vantage: no instance has `pricing`; the export changed")
        for item in instances:
            sku = str(item.get("apiName") or item.get("name") or "").strip()
            pricing = item.get("pricing")
            if not sku or not isinstance(pricing, dict):
                dropped["no name or pricing"] += 1
                continue
            family = instance_gpus(sku, "aws")
            canonical = family[0] if family else None
            count = _number(item.get("gpuCount")) or (family[1] if family else None)
            # "2048 GB" in the 2025-11-30 export, "2048 GiB" in 2026-01-21: the same GiB figure.
            ram = re.match(r"([\d.]+)\s*Gi?B", str(item.get("memory", "")).replace(",", ""))
            for region, prices in sorted(pricing.items()):
                if not isinstance(prices, dict):
                    dropped["region without prices"] += 1
                    continue
                for key, term in _TERMS:
                    price = to_decimal(prices.get(key))
                    if price is None or price == 0:
                        dropped[f"{key} not a price"] += 1
                        continue
                    currency = "CNY" if region.startswith(_CNY_REGION_PREFIX) else "USD"
                    if not within_gpu_hour_bound(price, count, currency):
                        dropped["absurd magnitude"] += 1
                        continue
                    record = PriceRecord(
                        source=NAME,
                        kind="gpu_instance",
                        provider="aws",
                        sku=sku,
                        region=region,
                        term=term,
                        unit="usd_per_hour",
                        price=price,
                        currency=currency,
                        gpu_model=canonical,
                        gpu_name_source=str(item.get("gpu") or "") or None,
                        gpu_count=count,
                        gpu_memory_gb=gpu_memory_gb(canonical),
                        vcpus=_number(item.get("vcpu")),
                        ram_gb=float(ram.group(1)) if ram else None,
                    )
                    kept = records.get((sku, region, term))
                    if kept is not None:
                        dropped["duplicate"] += 1
                    if kept is None or price < kept.price:
                        records[(sku, region, term)] = record
    if not records:
        raise LayoutError("aws_vantage: no usable price in the file")
    if dropped:
        log.info("aws_vantage: skipped %s", dict(dropped))
    return sorted(records.values(), key=lambda r: (r.sku, r.region, r.term))
