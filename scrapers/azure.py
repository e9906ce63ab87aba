"""Azure GPU VM prices from the public Azure Retail Prices API (on demand, spot, low priority,
reservations and savings plans per region).

Rules, each observed in real responses (tests/fixtures/prices, 2025-06 and 2026):
- Linux only: Windows meters (productName ending "Windows" or "Win") price the licence too.
- `type` Consumption only for pay-as-you-go; DevTestConsumption is a subscription-type discount.
- The term is in `skuName`: "... Spot" -> spot, "... Low Priority" -> low_priority.
- Reservation rows (`type` Reservation) price the whole term although `unitOfMeasure` says
  "1 Hour": they become an hourly equivalent (total / (years x 8760 h)) only when
  `reservationTerm` is 1 or 3 years; other terms are dropped.
- Savings-plan rates (api-version 2023-01-01-preview) are already hourly.
- Dedicated hosts are a different product (a whole host) and are skipped.
- A row closed before it opened, or before the fetch, is not current and is skipped.
- Duplicates of (VM, region, term) keep the lowest price.
The projection file format (`[{region, skuName, productName, pricePerHour, ...}]`, no `type`)
lost the reservation marker: there a price is a reservation total when it exceeds
MAX_USD_PER_GPU_HOUR per GPU or is >= 100x the lowest price of the same meter group (a real
hourly price never varies 100x within one meter); the term is unknown, so it is dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from scrapers.base import LayoutError, bodies, load_json, page_link, source_url, to_decimal
from scrapers.gpu_names import gpu_memory_gb, instance_gpus, within_gpu_hour_bound
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "azure"
DEFAULT_URL = (
    "https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview"
    "&$filter=serviceName eq 'Virtual Machines' and contains(armSkuName, 'Standard_N')"
)
MAX_PAGES = 5000  # a NextPageLink loop on the server must not hang a refresh
HOURS_PER_YEAR = Decimal(8760)
RESERVATION_RATIO = 100
log = logging.getLogger(__name__)

_API_KEYS = ("armSkuName", "armRegionName", "skuName", "productName", "retailPrice",
             "unitOfMeasure", "type", "currencyCode")  # fmt: skip
_PROJECTION_KEYS = ("region", "skuName", "productName", "pricePerHour", "currency", "unitOfMeasure")
_YEARS = {"1 Year": 1, "3 Years": 3}
# GPU VM series: NC, ND, NG, NV (NP is FPGA). Other VMs are not GPU instances.
_GPU_VM = re.compile(r"(standard_)?n[cdgv]\w*", re.IGNORECASE)


def fetch(http: Http) -> list[RawCapture]:
    """Every page of the GPU VM query, following `NextPageLink` to the end."""
    first = source_url(NAME, DEFAULT_URL)
    captures = [http.get(first)]
    followed = {first}
    while len(captures) < MAX_PAGES:
        next_link = page_link(captures[-1].body, "NextPageLink")
        if not next_link:
            break
        if next_link in followed:
            raise LayoutError(f"azure: NextPageLink repeats an earlier page ({next_link[:200]})")
        followed.add(next_link)
        captures.append(http.get(next_link))
    return captures


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    dropped: Counter[str] = Counter()
    best: dict[tuple[str, str, str], PriceRecord] = {}
    for body in bodies(raw):
        data = load_json(body, "azure")
        if isinstance(data, dict) and isinstance(data.get("Items"), list):
            records = _parse_api(data["Items"], fetched_at, dropped)
        elif isinstance(data, list):
            records = _parse_projection(data, dropped)
        else:
            raise LayoutError("azure: expected a Retail Prices page with `Items` or a list of rows")
        for record in records:
            key = (record.sku, record.region, record.term)
            if key in best:
                dropped["duplicate"] += 1
            if key not in best or record.price < best[key].price:
                best[key] = record
    if dropped:
        log.info("azure: skipped %s", dict(dropped))
    return sorted(best.values(), key=lambda r: (r.sku, r.region, r.term))


def _is_windows(product: str) -> bool:
    return bool(re.search(r"\b(Windows|Win)$", product.strip()))


def _split_term(sku_name: str) -> tuple[str, str]:
    """("Standard_NC24ads_A100_v4 Spot") -> ("Standard_NC24ads_A100_v4", "spot")."""
    name = sku_name.strip()
    for suffix, term in ((" Low Priority", "low_priority"), (" Spot", "spot")):
        if name.endswith(suffix):
            return name[: -len(suffix)].strip(), term
    return name, "on_demand"


def _record(vm: str, region: str, term: str, price: Decimal, currency: str) -> PriceRecord:
    gpus = instance_gpus(vm, "azure")
    canonical, count = gpus if gpus else (None, None)
    return PriceRecord(
        source=NAME,
        kind="gpu_instance",
        provider="azure",
        sku=vm,
        region=region,
        term=term,
        unit="usd_per_hour",
        price=price,
        currency=currency,
        gpu_model=canonical,
        gpu_name_source=vm,
        gpu_count=count,
        gpu_memory_gb=gpu_memory_gb(canonical),
    )


def _parse_datetime(text: object) -> datetime | None:
    """An aware UTC datetime (a naive one is taken as UTC, as the API means), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_api(items: list, fetched_at: datetime, dropped: Counter) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    for item in items:
        if not isinstance(item, dict) or any(k not in item for k in _API_KEYS):
            missing = [k for k in _API_KEYS if not isinstance(item, dict) or k not in item]
            raise LayoutError(f"azure: a price item lacks {', '.join(missing)}")
        vm = (item["armSkuName"] or "").strip()
        product = str(item["productName"])
        if not vm:
            dropped["no armSkuName"] += 1
            continue
        if (
            not _GPU_VM.fullmatch(vm)
            or item.get("serviceName", "Virtual Machines") != "Virtual Machines"
        ):
            dropped["not a GPU VM"] += 1
            continue
        if _is_windows(product) or "Dedicated Host" in product:
            dropped["windows or dedicated host"] += 1
            continue
        if item["unitOfMeasure"] != "1 Hour":
            dropped["unit not hourly"] += 1
            continue
        start, end = (
            _parse_datetime(item.get("effectiveStartDate")),
            _parse_datetime(item.get("effectiveEndDate")),
        )
        now = fetched_at if fetched_at.tzinfo else fetched_at.replace(tzinfo=UTC)
        if end is not None and ((start is not None and end < start) or end < now):
            dropped["closed row"] += 1
            continue
        currency = str(item["currencyCode"])
        region = str(item["armRegionName"])
        price = to_decimal(item["retailPrice"])
        base, term = _split_term(str(item["skuName"]))
        kind = item["type"]
        if kind == "Reservation":
            years = _YEARS.get(item.get("reservationTerm"))
            if years is None or term != "on_demand" or price is None:
                dropped["reservation term unknown"] += 1
                continue
            # Six places: an hourly equivalent is derived, and the warehouse keeps 12.
            price = (price / (years * HOURS_PER_YEAR)).quantize(Decimal("0.000001"))
            term = f"reserved_{years}y"
        elif kind != "Consumption":
            dropped[f"type {kind}"] += 1
            continue
        candidates = [(term, price)]
        if kind == "Consumption" and term == "on_demand":
            for plan in item.get("savingsPlan") or []:
                years = _YEARS.get(plan.get("term")) if isinstance(plan, dict) else None
                if years:
                    candidates.append(
                        (f"savings_plan_{years}y", to_decimal(plan.get("retailPrice")))
                    )
        for cand_term, cand_price in candidates:
            if cand_price is None or cand_price == 0:
                dropped["not a price"] += 1
                continue
            record = _record(vm, region, cand_term, cand_price, currency)
            if not within_gpu_hour_bound(cand_price, record.gpu_count, currency):
                dropped["absurd magnitude"] += 1
                continue
            records.append(record)
    return records


def _parse_projection(rows: list, dropped: Counter) -> list[PriceRecord]:
    groups: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    kept: list[tuple[dict, Decimal]] = []
    for row in rows:
        if not isinstance(row, dict) or any(k not in row for k in _PROJECTION_KEYS):
            raise LayoutError(f"azure: a projection row lacks one of {', '.join(_PROJECTION_KEYS)}")
        product = str(row["productName"])
        if _is_windows(product) or "Dedicated Host" in product:
            dropped["windows or dedicated host"] += 1
            continue
        if row["unitOfMeasure"] != "1 Hour":
            dropped["unit not hourly"] += 1
            continue
        price = to_decimal(row["pricePerHour"])
        if price is None or price == 0:
            dropped["not a price"] += 1
            continue
        groups[(row["region"], row["skuName"], product)].append(price)
        kept.append((row, price))
    records: list[PriceRecord] = []
    for row, price in kept:
        group_min = min(groups[(row["region"], row["skuName"], str(row["productName"]))])
        vm, term = _split_term(str(row["skuName"]))
        record = _record(vm, str(row["region"]), term, price, str(row["currency"]))
        if price >= RESERVATION_RATIO * group_min or not within_gpu_hour_bound(
            price, record.gpu_count, record.currency
        ):
            dropped["reservation total (term unknown)"] += 1
            continue
        records.append(record)
    return records
