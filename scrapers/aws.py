"""AWS EC2 GPU instance prices from the public Price List bulk API (per-region EC2 offer files).

An offer file is hundreds of MB, so it is read as a stream (ijson): one pass keeps the few GPU
products, two more passes keep only their OnDemand and Reserved offers. Peak memory stays at the
size of the kept offers, whatever the file's size (bench/bench_aws_parse.py measures it).

Which offer row is "the" price of an instance type (deterministic, documented rule; observed in
the us-east-1 offer file of 2024-05-28):
- Only Linux, shared tenancy, no pre-installed software, licence not required, capacity status
  "Used" and operation exactly "RunInstances". This excludes the Capacity Block twin
  (operation "RunInstances:CB", marketoption CapacityBlock, priced $0.00 under OnDemand),
  Windows/RHEL/SQL rows, dedicated hosts and reservation placeholders.
- On-demand: only dimensions with unit "Hrs" are hourly prices; an "Upfront Fee" (unit
  Quantity) that sits inside OnDemand (us-east-2 file) is not.
- Reserved: every LeaseContractLength (1yr, 3yr) x PurchaseOption (No/Partial/All Upfront) x
  OfferingClass (standard, convertible) is its own term. The "Upfront Fee" is kept in `upfront`
  and `price` is the hourly equivalent: the hourly rate plus the fee over the term's hours
  (8,760 a year, as AWS bills a 1-year term), rounded to a millionth of a dollar.
- A zero or empty price is never a price. Duplicates of (instance, region, term) keep the lowest.
- The currency is the one the file prices in (China regions: CNY), never converted: the row
  keeps currency "CNY" and views that convert to USD leave it out.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import BinaryIO
from urllib.parse import urljoin

import ijson

from scrapers.base import LayoutError, bodies, source_url, to_decimal
from scrapers.gpu_names import gpu_memory_gb, instance_gpus, within_gpu_hour_bound
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "aws"
DEFAULT_URL = (
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json"
)
# Per-region EC2 offer files are hundreds of MB each, so only these regions are fetched by
# default; INFERCOST_AWS_REGIONS="us-east-1,eu-west-1" chooses others, "all" every listed one.
# (Every region's prices also come, lighter, from the `aws_vantage` source.)
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
_PURCHASE_OPTIONS = {"No Upfront": "", "Partial Upfront": "_partial_upfront",
                     "All Upfront": "_all_upfront"}  # fmt: skip
_OFFERING_CLASSES = {"standard": "reserved", "convertible": "reserved_convertible"}
HOURS_PER_YEAR = 8760
_MICRO = Decimal("0.000001")


def regions(listed: dict | None = None) -> list[str]:
    chosen = os.environ.get("INFERCOST_AWS_REGIONS", "")
    if chosen.strip() == "all" and listed is not None:
        return sorted(listed)
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
    for region in regions(listed):
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
        stream = io.BytesIO(body)
        if _is_region_index(stream):
            continue  # the region index: it lists files, it prices nothing
        offer_files += 1
        for record in parse_offer_stream(stream, dropped):
            key = (record.sku, record.region, record.term)
            if key in best:
                dropped["duplicate"] += 1
            if key not in best or record.price < best[key].price:
                best[key] = record
    if not offer_files:
        raise LayoutError("aws: no offer file among the responses")
    if dropped:
        log.info("aws: skipped %s", dict(dropped))
    return sorted(best.values(), key=lambda r: (r.sku, r.region, r.term))


def _is_region_index(stream: BinaryIO) -> bool:
    """A small region index (`regions`, no `products`); the stream is left at its start."""
    head = stream.read(4096)
    stream.seek(0)
    if b'"products"' in head or b'"regions"' not in head:
        return False
    try:
        data = json.load(stream)
    except ValueError as exc:
        raise LayoutError(f"aws: response is not JSON: {exc}") from None
    finally:
        stream.seek(0)
    return isinstance(data, dict) and "regions" in data and "products" not in data


def _items(stream: BinaryIO, prefix: str) -> Iterator[tuple[str, object]]:
    """(key, value) of the object at `prefix`, read from the start of a seekable stream."""
    stream.seek(0)
    try:
        yield from ijson.kvitems(stream, prefix)
    except ijson.JSONError as exc:
        raise LayoutError(f"aws: offer file is not JSON: {exc}") from None


def parse_offer_stream(stream: BinaryIO, dropped: Counter | None = None) -> list[PriceRecord]:
    """Every GPU price in one offer file, read in three streaming passes over a seekable stream."""
    dropped = Counter() if dropped is None else dropped
    products: dict[str, dict] = {}
    seen_products = 0
    for sku_id, product in _items(stream, "products"):
        seen_products += 1
        attrs = _gpu_attributes(sku_id, product, dropped)
        if attrs is not None:
            products[sku_id] = attrs
    if not seen_products:
        raise LayoutError("aws: offer file lacks `products`")
    if not products:
        return []
    records: list[PriceRecord] = []
    priced = set()
    for sku_id, offers in _items(stream, "terms.OnDemand"):
        if sku_id in products:
            priced.add(sku_id)
            for currency, hourly in _dimensions(offers, dropped)[0]:
                _add(records, products[sku_id], "on_demand", hourly, None, currency, dropped)
    if not priced:
        raise LayoutError("aws: offer file lacks `terms.OnDemand` for its GPU products")
    for sku_id, offers in _items(stream, "terms.Reserved"):
        if sku_id in products:
            for offer in offers.values():
                _add_reserved(records, products[sku_id], offer, dropped)
    return records


def _gpu_attributes(sku_id: str, product: object, dropped: Counter) -> dict | None:
    """The attributes of a plain Linux GPU instance product, else None."""
    attrs = product.get("attributes") if isinstance(product, dict) else None
    if not isinstance(attrs, dict):
        raise LayoutError(f"aws: product {sku_id} lacks `attributes`")
    if not str(product.get("productFamily", "")).startswith("Compute Instance"):
        return None
    if "instanceType" not in attrs:
        raise LayoutError(f"aws: compute product {sku_id} lacks `instanceType`")
    if any(attrs.get(k) != v for k, v in _WANTED.items()) or any(
        k in attrs and attrs[k] != v for k, v in _WANTED_IF_PRESENT.items()
    ):
        dropped["not the plain Linux row"] += 1
        return None
    family = instance_gpus(attrs["instanceType"], "aws")
    if family is None and not _float(attrs.get("gpu")):
        return None  # not a GPU instance
    return attrs


def _dimensions(offers: object, dropped: Counter) -> tuple[list, dict[str, Decimal]]:
    """([(currency, hourly price)], {currency: upfront fee}) over one SKU's offers."""
    hourly, fees = [], {}
    offers = offers if isinstance(offers, dict) else {}
    for offer in offers.values():
        dims = offer.get("priceDimensions") if isinstance(offer, dict) else None
        if not isinstance(dims, dict):
            raise LayoutError("aws: an offer term lacks `priceDimensions`")
        for dim in dims.values():
            if not isinstance(dim, dict) or not isinstance(dim.get("pricePerUnit"), dict):
                raise LayoutError("aws: a price dimension lacks `pricePerUnit`")
            if dim.get("unit") == "Hrs":
                hourly.extend(dim["pricePerUnit"].items())
            elif dim.get("unit") == "Quantity" and "upfront" in str(dim.get("description")).lower():
                for currency, text in dim["pricePerUnit"].items():
                    fees[currency] = to_decimal(text)
            else:
                dropped[f"unit {dim.get('unit')}"] += 1
    return hourly, fees


def _add_reserved(records: list, attrs: dict, offer: object, dropped: Counter) -> None:
    ta = offer.get("termAttributes") if isinstance(offer, dict) else None
    ta = ta if isinstance(ta, dict) else {}
    years = _RESERVED_YEARS.get(ta.get("LeaseContractLength"))
    option = _PURCHASE_OPTIONS.get(ta.get("PurchaseOption"))
    kind = _OFFERING_CLASSES.get(ta.get("OfferingClass"))
    if years is None or option is None or kind is None:
        dropped["unknown reserved term"] += 1
        return
    term = f"{kind}_{years}y{option}"
    hourly, fees = _dimensions({"offer": offer}, dropped)
    if option and not fees:
        dropped["upfront option without its fee"] += 1
        return
    if not hourly and option == "_all_upfront":
        hourly = [(currency, "0") for currency in fees]  # the fee is the whole price
    for currency, text in hourly:
        rate, fee = to_decimal(text), fees.get(currency)
        if rate is None or (option and fee is None):
            dropped["not a price"] += 1
            continue
        equivalent = rate + (fee or Decimal(0)) / (years * HOURS_PER_YEAR)
        _add(records, attrs, term, equivalent.quantize(_MICRO, ROUND_HALF_EVEN), fee,
             currency, dropped)  # fmt: skip


def _add(records, attrs, term, text, upfront, currency, dropped) -> None:
    price = to_decimal(text)
    if price is None or price == 0:
        dropped["not a price"] += 1
        return
    instance = attrs["instanceType"]
    family = instance_gpus(instance, "aws")
    canonical = family[0] if family else None
    count = _float(attrs.get("gpu")) or (family[1] if family else None)
    if not within_gpu_hour_bound(price, count, currency):
        dropped["absurd magnitude"] += 1
        return
    records.append(
        PriceRecord(
            source=NAME,
            kind="gpu_instance",
            provider="aws",
            sku=instance,
            region=attrs.get("regionCode") or attrs.get("location") or "",
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
            upfront=None if upfront is None else _tidy(upfront),
        )
    )


def _float(text: object) -> float | None:
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        return None
    return value if value == value and value > 0 else None


def _tidy(price: Decimal) -> Decimal:
    """ "32.7726000000" -> 32.7726; the offer files pad every price to 10 decimals."""
    return price.quantize(Decimal(1)) if price == price.to_integral() else price.normalize()
