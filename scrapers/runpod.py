"""RunPod GPU prices: the GraphQL API when `RUNPOD_API_KEY` is set, else SkyPilot's public catalog.

The API prices one GPU for an hour in Secure and Community Cloud, on demand and spot (the spot
prices are bids' floors); the catalog prices whole `Nx_<GPU>_SECURE` pods per zone.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from datetime import datetime

from scrapers.base import LayoutError, bodies, load_json, source_url, to_decimal
from scrapers.gpu_names import canonical_gpu, gpu_memory_gb, within_gpu_hour_bound
from scrapers.http import Http
from scrapers.skypilot import CATALOG_BASE_URL, CatalogRules, parse_catalog
from warehouse.records import PriceRecord, RawCapture

NAME = "runpod"
DEFAULT_URL = f"{CATALOG_BASE_URL}/runpod/vms.csv"
GRAPHQL_URL = "https://api.runpod.io/graphql"
GRAPHQL_QUERY = (
    "query GpuTypes { gpuTypes { id displayName memoryInGb secureCloud communityCloud "
    "securePrice communityPrice secureSpotPrice communitySpotPrice } }"
)
log = logging.getLogger(__name__)

# GraphQL price field -> (cloud, term, flag that says the cloud offers this GPU at all).
# Observed 2025-06 (runpod_graphql_gpu_types.json): a cloud that does not offer a GPU still
# shows placeholder prices (B200 communityPrice 0.5 with communityCloud false) or 0.
_PRICE_FIELDS = (
    ("securePrice", "secure", "on_demand", "secureCloud"),
    ("secureSpotPrice", "secure", "spot", "secureCloud"),
    ("communityPrice", "community", "on_demand", "communityCloud"),
    ("communitySpotPrice", "community", "spot", "communityCloud"),
)

# The catalog's region column is a country; AvailabilityZone is the data centre one rents in.
# SkyPilot's generator writes SpotPrice from the API's `secureSpotPrice` and Price from
# `securePrice`. In catalog 0727c2bd (v7/runpod/vms.csv, 2025) every L40S row has them the other
# way round (SpotPrice 0.86, Price 0.43 per GPU) while RunPod's own API at the time says L40S
# securePrice 0.86, secureSpotPrice 0.43 (runpod_graphql_gpu_types.json, 2025-06-21; the
# gpu-price-tracker capture of 2025-05-17 also says secure 0.86). Our reader takes columns by
# header name, so the exchange is in the published values, not in our parse. A RunPod spot
# price is a bid floor below the on-demand price by construction, so a pair that says otherwise
# is put back in order (and counted in the log) instead of being stored upside down.
CATALOG_RULES = CatalogRules(
    source=NAME,
    provider="runpod",
    gpu_name=lambda row: row["AcceleratorName"],
    region=lambda row: (row.get("AvailabilityZone") or row["Region"]).strip(),
    memory_gb=lambda row, info: None,  # MemoryGiB is host RAM; GpuInfo is only the name
    order_spot_pair=True,
)


def fetch(http: Http) -> list[RawCapture]:
    key = os.environ.get("RUNPOD_API_KEY")
    if not key:
        return [http.get(source_url(NAME, DEFAULT_URL))]
    return [
        http.post_json(
            source_url(NAME, GRAPHQL_URL),
            {"query": GRAPHQL_QUERY},
            headers={"Authorization": f"Bearer {key}"},
        )
    ]


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    for body in bodies(raw):
        if body.lstrip()[:1] in (b"{", b"["):
            records.extend(parse_graphql(body))
        else:
            records.extend(parse_catalog(body, CATALOG_RULES))
    return records


def parse_graphql(body: bytes) -> list[PriceRecord]:
    """Per-GPU-hour prices from a `gpuTypes` GraphQL response, its bare list, or the
    id -> {secure_price} map a price tracker saved from the same API."""
    data = load_json(body, "runpod")
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and "secure_price" in v for v in data.values())
    ):
        # gpu-price-tracker's saved form (runpod_gpu_prices.json, 2025-05): id -> secure price.
        data = [
            {"id": v.get("id") or k, "secureCloud": True, "securePrice": v["secure_price"]}
            for k, v in data.items()
        ]
    elif isinstance(data, dict):
        if data.get("errors"):
            raise LayoutError(f"runpod: GraphQL errors: {str(data['errors'])[:200]}")
        data = (data.get("data") or {}).get("gpuTypes")
    if not isinstance(data, list):
        raise LayoutError("runpod: expected data.gpuTypes to be a list")
    records: list[PriceRecord] = []
    dropped: Counter[str] = Counter()
    for gpu in data:
        if not isinstance(gpu, dict) or not isinstance(gpu.get("id"), str):
            raise LayoutError("runpod: a gpuType lacks its `id`")
        if not any(field in gpu for field, *_ in _PRICE_FIELDS):
            raise LayoutError(f"runpod: {gpu['id']}: no price fields")
        memory = gpu.get("memoryInGb")
        memory = float(memory) if isinstance(memory, int | float) and memory > 0 else None
        canonical = canonical_gpu(gpu["id"], NAME, memory)
        for field, cloud, term, offered in _PRICE_FIELDS:
            price = to_decimal(gpu.get(field))
            if not gpu.get(offered) or price is None or price == 0:
                dropped[f"{field} not offered"] += 1
                continue
            if not within_gpu_hour_bound(price, 1):
                dropped["absurd magnitude"] += 1
                continue
            records.append(
                PriceRecord(
                    source=NAME,
                    kind="gpu_instance",
                    provider="runpod",
                    sku=f"{gpu['id']} ({cloud})",
                    region="",
                    term=term,
                    unit="usd_per_gpu_hour",
                    # Floats such as 1.9679999999999997 are API noise; prices are whole cents
                    # or tenths of a cent, so six places keep every real digit.
                    price=round(price, 6).normalize(),
                    gpu_model=canonical,
                    gpu_name_source=gpu["id"],
                    gpu_count=1.0,
                    gpu_memory_gb=gpu_memory_gb(canonical, memory),
                )
            )
    if dropped:
        log.info("runpod: skipped %s", dict(dropped))
    return records
