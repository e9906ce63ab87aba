"""Google Cloud GPU prices from the Cloud Billing Catalog API (Compute Engine service SKUs).

GCP bills a GPU separately from the VM's cores and memory, so each GPU SKU becomes one GPU for
one hour (`usd_per_gpu_hour`, gpu_count 1) with the GCP accelerator type as sku
(`nvidia-tesla-a100`). Where the same response also prices the machine family's cores and RAM
(the full API listing does; the saved GPU-only file does not), whole accelerator-optimized
machine types (`a2-highgpu-1g`, `g2-standard-8`, ...) are priced per hour from their parts.

The pricing type is only in `description` (observed 2025-06 in 1632 GPU SKUs):
"Nvidia L4 GPU running in Belgium" -> on_demand; "... attached to Spot Preemptible VMs ..." ->
spot; "Commitment v1: ... for 1 Year" / "for 3 Year(s)" -> commitment_1y/3y. Skipped: "Reserved
..." (priced 0: reserved capacity is paid through commitments), "... in Calendar Mode", "DWS
Defined Duration" (no matching term), and "Licensing Fee ..." (OS licences, not GPUs).
A price is `units` + `nanos` / 1e9 in the SKU's currency.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal, InvalidOperation

from scrapers.base import (
    MAX_USD_PER_GPU_HOUR,
    LayoutError,
    SkipSource,
    bodies,
    load_json,
    page_link,
    source_url,
)
from scrapers.gpu_names import canonical_gpu, gpu_memory_gb
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "gcp"
COMPUTE_ENGINE_SERVICE = "6F81-5844-456A"
DEFAULT_URL = f"https://cloudbilling.googleapis.com/v1/services/{COMPUTE_ENGINE_SERVICE}/skus"
MAX_PAGES = 1000
log = logging.getLogger(__name__)

_DESCRIPTION = re.compile(
    r"(?P<commit>Commitment v1: )?(?P<reserved>Reserved )?(?P<gpu>.+?) GPU"
    r"(?: attached to (?P<vm>.+?) VMs)?(?: running)? in (?P<loc>.+?)"
    r"(?: for (?P<years>\d+) Years?)?(?P<calendar> in Calendar Mode)?"
)

# Billing-SKU GPU name -> accelerator type as `gcloud compute accelerator-types list` names it.
ACCELERATOR_TYPES = {
    "Nvidia Tesla A100": "nvidia-tesla-a100",
    "Nvidia Tesla A100 80GB": "nvidia-a100-80gb",
    "Nvidia H100 80GB": "nvidia-h100-80gb",
    "Nvidia H100 80GB Mega": "nvidia-h100-mega-80gb",
    "Nvidia H100 Mega 80GB": "nvidia-h100-mega-80gb",
    "H200 141GB": "nvidia-h200-141gb",
    "Nvidia L4": "nvidia-l4",
    "Nvidia Tesla T4": "nvidia-tesla-t4",
    "Nvidia Tesla V100": "nvidia-tesla-v100",
    "Nvidia Tesla P100": "nvidia-tesla-p100",
    "Nvidia Tesla P4": "nvidia-tesla-p4",
}
# GPU memory where the billing name does not say it ("Nvidia Tesla A100" is the 40 GB board).
_MEMORY_GB = {"nvidia-tesla-a100": 40.0, "nvidia-tesla-v100": 16.0}

# Location in descriptions -> region id (cloud.google.com/compute/docs/regions-zones, 2025).
# Multi-region names (Americas, EMEA, APAC) and names not listed here are kept as written.
LOCATIONS = {
    "Iowa": "us-central1", "South Carolina": "us-east1", "Virginia": "us-east4",
    "Columbus": "us-east5", "Dallas": "us-south1", "Oregon": "us-west1",
    "Los Angeles": "us-west2", "Salt Lake City": "us-west3", "Las Vegas": "us-west4",
    "Montreal": "northamerica-northeast1", "Toronto": "northamerica-northeast2",
    "Mexico": "northamerica-south1", "Sao Paulo": "southamerica-east1",
    "Santiago": "southamerica-west1", "Belgium": "europe-west1", "London": "europe-west2",
    "Frankfurt": "europe-west3", "Netherlands": "europe-west4", "Zurich": "europe-west6",
    "Milan": "europe-west8", "Paris": "europe-west9", "Berlin": "europe-west10",
    "Turin": "europe-west12", "Finland": "europe-north1", "Stockholm": "europe-north2",
    "Warsaw": "europe-central2", "Madrid": "europe-southwest1", "Taiwan": "asia-east1",
    "Hong Kong": "asia-east2", "Tokyo": "asia-northeast1", "Osaka": "asia-northeast2",
    "Seoul": "asia-northeast3", "Mumbai": "asia-south1", "Delhi": "asia-south2",
    "Singapore": "asia-southeast1", "Jakarta": "asia-southeast2",
    "Sydney": "australia-southeast1", "Melbourne": "australia-southeast2",
    "Israel": "me-west1", "TelAviv": "me-west1", "Doha": "me-central1",
    "Dammam": "me-central2", "Johannesburg": "africa-south1",
}  # fmt: skip


# Accelerator-optimized machine types: (family SKU prefix, vCPUs, RAM GiB, accelerator, count)
# from cloud.google.com/compute/docs/accelerator-optimized-machines (2025). A machine's hourly
# price is vCPUs x core price + RAM x GiB-hour price + GPUs x GPU price, all from the same
# location and term; a2-highgpu-1g in us-central1 gives the published $3.673385.
MACHINE_TYPES = {
    "a2-highgpu-1g": ("A2", 12, 85, "nvidia-tesla-a100", 1),
    "a2-highgpu-2g": ("A2", 24, 170, "nvidia-tesla-a100", 2),
    "a2-highgpu-4g": ("A2", 48, 340, "nvidia-tesla-a100", 4),
    "a2-highgpu-8g": ("A2", 96, 680, "nvidia-tesla-a100", 8),
    "a2-megagpu-16g": ("A2", 96, 1360, "nvidia-tesla-a100", 16),
    "a2-ultragpu-1g": ("A2", 12, 170, "nvidia-a100-80gb", 1),
    "a2-ultragpu-2g": ("A2", 24, 340, "nvidia-a100-80gb", 2),
    "a2-ultragpu-4g": ("A2", 48, 680, "nvidia-a100-80gb", 4),
    "a2-ultragpu-8g": ("A2", 96, 1360, "nvidia-a100-80gb", 8),
    "a3-highgpu-8g": ("A3", 208, 1872, "nvidia-h100-80gb", 8),
    "g2-standard-4": ("G2", 4, 16, "nvidia-l4", 1),
    "g2-standard-8": ("G2", 8, 32, "nvidia-l4", 1),
    "g2-standard-12": ("G2", 12, 48, "nvidia-l4", 1),
    "g2-standard-16": ("G2", 16, 64, "nvidia-l4", 1),
    "g2-standard-24": ("G2", 24, 96, "nvidia-l4", 2),
    "g2-standard-32": ("G2", 32, 128, "nvidia-l4", 1),
    "g2-standard-48": ("G2", 48, 192, "nvidia-l4", 4),
    "g2-standard-96": ("G2", 96, 384, "nvidia-l4", 8),
}
# "A2 Instance Core running in Americas", "Spot Preemptible G2 Instance Ram running in Belgium"
_COMPONENT = re.compile(
    r"(?P<spot>Spot Preemptible )?(?P<family>[A-Z]\d+) Instance (?P<part>Core|Ram)"
    r" running in (?P<loc>.+)"
)


def api_key() -> str | None:
    return os.environ.get("INFERCOST_GCP_API_KEY") or os.environ.get("GOOGLE_API_KEY")


def fetch(http: Http) -> list[RawCapture]:
    """Every page of the Compute Engine SKU list, following `nextPageToken` to the end."""
    key = api_key()
    if not key:
        raise SkipSource(
            "GCP_API_KEY not set: export INFERCOST_GCP_API_KEY (a Cloud Billing API key) to fetch GCP prices"
        )
    url = source_url(NAME, DEFAULT_URL)
    params = {"key": key, "currencyCode": "USD", "pageSize": "5000"}
    captures = [http.get(url, params=params)]
    tokens: set[str] = set()
    while len(captures) < MAX_PAGES:
        token = page_link(captures[-1].body, "nextPageToken")
        if not token:
            break
        if token in tokens:
            raise LayoutError(f"gcp: nextPageToken repeats an earlier page ({token[:200]})")
        tokens.add(token)
        captures.append(http.get(url, params={**params, "pageToken": token}))
    return captures


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    dropped: Counter[str] = Counter()
    best: dict[tuple[str, str, str], PriceRecord] = {}
    components: dict[tuple[str, str, str, str], tuple[Decimal, str]] = {}
    locations: dict[tuple[str, str, str], str] = {}  # (accelerator, region, term) -> location
    for body in bodies(raw):
        data = load_json(body, "gcp")
        # An API page is {"skus": [...], "nextPageToken": ...}; a saved projection is the bare list.
        skus = data.get("skus") if isinstance(data, dict) else data
        if not isinstance(skus, list):
            raise LayoutError("gcp: expected a SKU list page with a `skus` list")
        for sku in skus:
            _component(sku, components)
            location, records = _parse_sku(sku, dropped)
            for record in records:
                locations[(record.sku, record.region, record.term)] = location
                _keep_lowest(best, record, dropped)
    for record in _machines(list(best.values()), locations, components):
        _keep_lowest(best, record, dropped)
    if dropped:
        log.info("gcp: skipped %s", dict(dropped))
    return sorted(best.values(), key=lambda r: (r.sku, r.region, r.term))


def _keep_lowest(best: dict, record: PriceRecord, dropped: Counter) -> None:
    key = (record.sku, record.region, record.term)
    if key in best:
        dropped["duplicate"] += 1
    if key not in best or record.price < best[key].price:
        best[key] = record


def _component(sku: object, components: dict) -> None:
    """Remember a machine family's core or RAM price (per vCPU-hour, per GiB-hour) by location."""
    if not isinstance(sku, dict) or not isinstance(sku.get("description"), str):
        return  # _parse_sku raises the layout error
    match = _COMPONENT.fullmatch(sku["description"])
    infos = sku.get("pricingInfo")
    if match is None or not isinstance(infos, list) or not infos:
        return
    info = max(infos, key=lambda i: str(i.get("effectiveTime") or i.get("EffectiveTime") or ""))
    unit = (info.get("pricingExpression") or {}).get("usageUnit")
    if unit != {"Core": "h", "Ram": "GiBy.h"}[match["part"]]:
        return
    priced = _price(info, units=("h", "GiBy.h"))
    if priced is None or priced[0] == 0:
        return
    term = "spot" if match["spot"] else "on_demand"
    key = (match["family"], match["part"], term, match["loc"].strip())
    components[key] = (priced[0], priced[1])


def _machines(
    gpus: list[PriceRecord], locations: dict[tuple[str, str, str], str], components: dict
) -> list[PriceRecord]:
    """Whole machine types priced from their parts, where all parts share location and term.

    Only on-demand and spot: commitment SKUs for cores and RAM are named differently
    ("Commitment v1: A2 Cpu ...") and are not composed.
    """
    records = []
    for gpu in gpus:
        if gpu.unit != "usd_per_gpu_hour" or gpu.term not in ("on_demand", "spot"):
            continue
        location = locations[(gpu.sku, gpu.region, gpu.term)]
        for machine, (family, vcpus, ram_gib, accelerator, count) in MACHINE_TYPES.items():
            core = components.get((family, "Core", gpu.term, location))
            ram = components.get((family, "Ram", gpu.term, location))
            if accelerator != gpu.sku or core is None or ram is None:
                continue
            if not core[1] == ram[1] == gpu.currency:
                continue
            price = vcpus * core[0] + ram_gib * ram[0] + count * gpu.price
            records.append(
                PriceRecord(
                    source=NAME,
                    kind="gpu_instance",
                    provider="gcp",
                    sku=machine,
                    region=gpu.region,
                    term=gpu.term,
                    unit="usd_per_hour",
                    price=price.normalize(),
                    currency=gpu.currency,
                    gpu_model=gpu.gpu_model,
                    gpu_name_source=gpu.gpu_name_source,
                    gpu_count=float(count),
                    gpu_memory_gb=gpu.gpu_memory_gb,
                    vcpus=float(vcpus),
                    ram_gb=float(ram_gib),
                )
            )
    return records


def _term(match: re.Match) -> str | None:
    if match["reserved"] or match["calendar"]:
        return None
    if match["commit"]:
        return {"1": "commitment_1y", "3": "commitment_3y"}.get(match["years"] or "")
    if match["years"]:
        return None
    vm = match["vm"]
    if vm is None:
        return "on_demand"
    return "spot" if "Spot" in vm or "Preemptible" in vm else None


def _price(info: dict, units: tuple[str, ...] = ("h",)) -> tuple[Decimal, str, Decimal] | None:
    """(price per usage unit, currency, units of currency per USD) of a pricingInfo entry."""
    expression = info.get("pricingExpression")
    if not isinstance(expression, dict) or not isinstance(expression.get("tieredRates"), list):
        raise LayoutError("gcp: pricingInfo lacks pricingExpression.tieredRates")
    if expression.get("usageUnit") not in units:
        return None
    rates = [r for r in expression["tieredRates"] if isinstance(r, dict)]
    if not rates:
        return None
    # The base tier starts at 0 usage; GPU SKUs have one tier.
    rate = min(rates, key=lambda r: r.get("startUsageAmount") or 0)
    unit_price = rate.get("unitPrice")
    if not isinstance(unit_price, dict) or "currencyCode" not in unit_price:
        raise LayoutError("gcp: a tiered rate lacks unitPrice.currencyCode")
    try:
        units = Decimal(str(unit_price.get("units") or "0"))
        nanos = Decimal(int(unit_price.get("nanos") or 0))
        rate_to_usd = Decimal(str(info.get("currencyConversionRate") or 1))
    except (InvalidOperation, ValueError, TypeError):
        return None
    price = units + nanos / Decimal(1_000_000_000)
    if not price.is_finite() or price < 0 or units < 0 or nanos < 0 or rate_to_usd <= 0:
        return None
    return price.normalize(), unit_price["currencyCode"], rate_to_usd


def _parse_sku(sku: object, dropped: Counter) -> tuple[str, list[PriceRecord]]:
    """(location as the description names it, per-GPU-hour records) of one SKU."""
    if not isinstance(sku, dict) or not isinstance(sku.get("description"), str):
        raise LayoutError("gcp: a SKU lacks `description`")
    infos = sku.get("pricingInfo")
    if not isinstance(infos, list) or not infos:
        raise LayoutError(f"gcp: SKU {sku.get('skuId')} lacks `pricingInfo`")
    category = sku.get("category")
    if isinstance(category, dict) and category.get("resourceGroup") != "GPU":
        return "", []  # cores, RAM, disks: priced separately and not GPU offers
    description = sku["description"]
    match = _DESCRIPTION.fullmatch(description)
    if description.startswith("Licensing Fee") or match is None:
        dropped["not a GPU price"] += 1
        return "", []
    term = _term(match)
    if term is None:
        dropped["reserved, calendar-mode or DWS"] += 1
        return "", []
    # The newest pricingInfo entry is the current price.
    info = max(infos, key=lambda i: str(i.get("effectiveTime") or i.get("EffectiveTime") or ""))
    priced = _price(info)
    if priced is None:
        dropped["not a price"] += 1
        return "", []
    price, currency, rate_to_usd = priced
    if price == 0:
        dropped["zero price"] += 1
        return "", []
    if price / rate_to_usd > MAX_USD_PER_GPU_HOUR:
        dropped["absurd magnitude"] += 1
        return "", []
    gpu = match["gpu"].strip()
    accelerator = ACCELERATOR_TYPES.get(gpu) or re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-")
    canonical = canonical_gpu(gpu, NAME, _MEMORY_GB.get(accelerator))
    location = match["loc"].strip()
    regions = sku.get("serviceRegions") or [LOCATIONS.get(location, location)]
    return location, [
        PriceRecord(
            source=NAME,
            kind="gpu_instance",
            provider="gcp",
            sku=accelerator,
            region=str(region),
            term=term,
            unit="usd_per_gpu_hour",
            price=price,
            currency=currency,
            gpu_model=canonical,
            gpu_name_source=gpu,
            gpu_count=1.0,
            gpu_memory_gb=gpu_memory_gb(canonical, _MEMORY_GB.get(accelerator)),
        )
        for region in regions
    ]
