"""GPU purchase prices over time (Amazon retail, via Keepa), from United-Compute's recorded table.

Each GPU's price series becomes dated periods: a price holds from its timestamp until the next
change, or until the listing went out of stock (a negative Keepa value).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from scrapers.base import LayoutError, bodies, source_url, to_decimal
from scrapers.gpu_names import canonical_gpu
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "gpu_purchase"
# The table was published as a CSV export in the United-Compute/gpu-price-tracker repository
# (removed there in 7fa0f5bb); there is no live endpoint, so refreshes need the URL override.
DEFAULT_URL = (
    "https://raw.githubusercontent.com/United-Compute/gpu-price-tracker/"
    "691433450c03ddad14f66f7a4ae12546fc9a3503/gpu-price-tracker_rows.csv"
)
log = logging.getLogger(__name__)

REQUIRED_COLUMNS = {"gpu_name", "vram", "price_history"}
# No single GPU card sells for more than this; above it is a unit or currency mix-up.
MAX_USD_PER_GPU = Decimal(200_000)


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def _timestamp(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise LayoutError(f"gpu_purchase: price timestamp {text!r} is not ISO 8601") from None
    # Keepa timestamps carry no zone; the tracker stored them in UTC.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise LayoutError(f"gpu_purchase: CSV lacks columns {sorted(missing)}")
        for row in reader:
            name = (row["gpu_name"] or "").strip()
            if not name or not row["price_history"]:
                dropped["no price history"] += 1
                continue
            try:
                history = json.loads(row["price_history"])
                points = history["prices"]
            except (ValueError, KeyError, TypeError):
                raise LayoutError(
                    f"gpu_purchase: {name}: price_history is not the Keepa JSON"
                ) from None
            if not isinstance(points, dict):
                raise LayoutError(f"gpu_purchase: {name}: `prices` is not an object")
            vram = to_decimal(row.get("vram"))
            series = sorted((_timestamp(k), v) for k, v in points.items())
            common = dict(
                source=NAME,
                kind="gpu_purchase",
                provider="amazon",
                sku=name,
                region="",
                term="purchase",
                unit="usd",
                gpu_model=canonical_gpu(name, NAME, float(vram) if vram else None),
                gpu_name_source=name,
                gpu_count=1.0,
                gpu_memory_gb=float(vram) if vram else None,
            )
            # Collapse the series into periods: one record per change of price.
            open_from: datetime | None = None
            open_price: Decimal | None = None
            for ts, value in series:
                price = to_decimal(value)
                if price is not None and (price == 0 or price > MAX_USD_PER_GPU):
                    dropped["absurd magnitude"] += 1
                    continue
                if price == open_price:
                    continue
                if open_price is not None:
                    records.append(
                        PriceRecord(price=open_price, valid_from=open_from, valid_to=ts, **common)
                    )
                if price is None:
                    # Keepa's -1 means out of stock: no price until the next offer.
                    if not (isinstance(value, int | float) and value < 0):
                        dropped["not a price"] += 1
                    open_from, open_price = None, None
                else:
                    open_from, open_price = ts, price
            if open_price is not None:
                records.append(PriceRecord(price=open_price, valid_from=open_from, **common))
    if not records:
        raise LayoutError("gpu_purchase: no usable price in the table")
    if dropped:
        log.info("gpu_purchase: %d periods, dropped %s", len(records), dict(dropped))
    return records
