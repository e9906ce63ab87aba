"""AWS EC2 GPU instance prices from the public Price List bulk API (per-region EC2 offer files).

Which offer row is "the" price of an instance type (deterministic, documented rule; observed in
the us-east-1 offer file of 2024-05-28):
- Only Linux, shared tenancy, no pre-installed software, licence not required, capacity status
  "Used" and operation exactly "RunInstances". This excludes the Capacity Block twin
  (operation "RunInstances:CB", marketoption CapacityBlock, priced $0.00 under OnDemand),
  Windows/RHEL/SQL rows, dedicated hosts and reservation placeholders.
- Only dimensions with unit "Hrs" are hourly prices; an "Upfront Fee" (unit Quantity) that
  sits inside OnDemand (us-east-2 file) is not.
- A zero price is never a price. Duplicates of (instance, region, term) keep the lowest.
- Reserved terms: standard, "No Upfront", 1yr or 3yr: its hourly rate is the whole cost.
  Partial/All Upfront options need the fee spread over the term and are skipped.
- The currency is the one the file prices in (China regions: CNY), never converted.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from datetime import datetime
from decimal import Decimal
from urllib.parse import urljoin

from scrapers.base import LayoutError, bodies, load_json, source_url, to_decimal
from scrapers.gpu_names import gpu_memory_gb, instance_gpus, within_gpu_hour_bound
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "aws"
DEFAULT_URL = (
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json"
)
# Per-region EC2 offer files are hundreds of MB each, so only these regions are fetched by
# default; INFERCOST_AWS_REGIONS="us-east-1,eu-west-1" chooses others.
DEFAULT_REGIONS = ("us-east-1", "us-east-2", "us-west-2")
log = logging.getLogger(__name__)

_WANTED = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "operation": "RunInstances",
}
# Checked only when present: older offer files lack them.
_WANTED_IF_PRESENT = {"licenseModel": "No License required", "capacitystatus": "Used"}
_RESERVED_YEARS = {"1yr": 1, "3yr": 3}


def regions() -> list[str]:
    chosen = os.environ.get("INFERCOST_AWS_REGIONS", "")
    return [r.strip() for r in chosen.split(",") if r.strip()] or list(DEFAULT_REGIONS)


def fetch(http: Http) -> list[RawCapture]:
    """The region index, then the offer file of each chosen region (or one offer file directly)."""
    first_url = source_url(NAME, DEFAULT_URL)
    index = http.get(first_url)
    try:
        listed = json.loads(index.body).get("regions")
    except (ValueError, AttributeError):
        listed = None
    if not isinstance(listed, dict):
        return [index]  # an offer file itself (or junk: parse() says which)
    captures = [index]
    for region in regions():
        entry = listed.get(region)
        if not isinstance(entry, dict) or "currentVersionUrl" not in entry:
            log.warning("aws: region %s is not in the region index", region)
            continue
        captures.append(http.get(urljoin(first_url, entry["currentVersionUrl"])))
    return captures


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    dropped: Counter[str] = Counter()
    best: dict[tuple[str, str, str], PriceRecord] = {}
    offer_files = 0
    for body in bodies(raw):
        data = load_json(body, "aws")
        if isinstance(data, dict) and "regions" in data and "products" not in data:
            continue  # the region index: it lists files, it prices nothing
        if not isinstance(data, dict) or not isinstance(data.get("products"), dict):
            raise LayoutError("aws: offer file lacks `products`")
        if not isinstance(data.get("terms"), dict):
            raise LayoutError("aws: offer file lacks `terms`")
        offer_files += 1
        for record in _parse_offer(data, dropped):
            key = (record.sku, record.region, record.term)
            if key in best:
                dropped["duplicate"] += 1
            if key not in best or record.price < best[key].price:
                best[key] = record
    if bodies and not offer_files:
        raise LayoutError("aws: no offer file among the responses")
    if dropped:
        log.info("aws: skipped %s", dict(dropped))
    return sorted(best.values(), key=lambda r: (r.sku, r.region, r.term))


def _hourly_prices(offers: dict, dropped: Counter) -> list[tuple[str, object]]:
    """(currency, price text) of every hourly dimension in one SKU's offers."""
    found = []
    for offer in offers.values():
        dims = offer.get("priceDimensions") if isinstance(offer, dict) else None
        if not isinstance(dims, dict):
            raise LayoutError("aws: an offer term lacks `priceDimensions`")
        for dim in dims.values():
            if not isinstance(dim, dict) or not isinstance(dim.get("pricePerUnit"), dict):
                raise LayoutError("aws: a price dimension lacks `pricePerUnit`")
            if dim.get("unit") != "Hrs":
                dropped[f"unit {dim.get('unit')}"] += 1
                continue
            found.extend(dim["pricePerUnit"].items())
    return found


def _parse_offer(data: dict, dropped: Counter) -> list[PriceRecord]:
    on_demand = data["terms"].get("OnDemand") or {}
    reserved = data["terms"].get("Reserved") or {}
    records: list[PriceRecord] = []
    for sku_id, product in data["products"].items():
        attrs = product.get("attributes") if isinstance(product, dict) else None
        if not isinstance(attrs, dict):
            raise LayoutError(f"aws: product {sku_id} lacks `attributes`")
        if not str(product.get("productFamily", "")).startswith("Compute Instance"):
            continue
        if "instanceType" not in attrs:
            raise LayoutError(f"aws: compute product {sku_id} lacks `instanceType`")
        if any(attrs.get(k) != v for k, v in _WANTED.items()) or any(
            k in attrs and attrs[k] != v for k, v in _WANTED_IF_PRESENT.items()
        ):
            dropped["not the plain Linux on-demand row"] += 1
            continue
        instance = attrs["instanceType"]
        family = instance_gpus(instance, "aws")
        listed_gpus = _float(attrs.get("gpu"))
        if family is None and not listed_gpus:
            continue  # not a GPU instance
        canonical = family[0] if family else None
        count = listed_gpus or (family[1] if family else None)
        region = attrs.get("regionCode") or attrs.get("location") or ""
        terms = [("on_demand", _hourly_prices(on_demand.get(sku_id) or {}, dropped))]
        for offer_id, offer in (reserved.get(sku_id) or {}).items():
            ta = offer.get("termAttributes") or {}
            years = _RESERVED_YEARS.get(ta.get("LeaseContractLength"))
            if (
                not years
                or ta.get("OfferingClass") != "standard"
                or ta.get("PurchaseOption") != "No Upfront"
            ):
                dropped["reserved option with upfront fee"] += 1
                continue
            terms.append((f"reserved_{years}y", _hourly_prices({offer_id: offer}, dropped)))
        for term, prices in terms:
            for currency, text in prices:
                price = to_decimal(text)
                if price is None or price == 0:
                    dropped["not a price"] += 1
                    continue
                if not within_gpu_hour_bound(price, count, currency):
                    dropped["absurd magnitude"] += 1
                    continue
                records.append(
                    PriceRecord(
                        source=NAME,
                        kind="gpu_instance",
                        provider="aws",
                        sku=instance,
                        region=region,
                        term=term,
                        unit="usd_per_hour",
                        price=_tidy(price),
                        currency=currency,
                        gpu_model=canonical,
                        gpu_name_source=instance,
                        gpu_count=count,
                        gpu_memory_gb=gpu_memory_gb(canonical),
                        vcpus=_float(attrs.get("vcpu")),
                        ram_gb=_float(str(attrs.get("memory", "")).replace("GiB", "")),
                    )
                )
    return records


def _float(text: object) -> float | None:
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        return None
    return value if value == value and value > 0 else None


def _tidy(price: Decimal) -> Decimal:
    """ "32.7726000000" -> 32.7726; the offer files pad every price to 10 decimals."""
    return price.quantize(Decimal(1)) if price == price.to_integral() else price.normalize()
