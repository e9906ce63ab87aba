"""AWS GPU instance on-demand and spot prices from SkyPilot's public AWS catalog CSV.

The catalog has one row per availability zone, each with that zone's spot price. A region's
spot price here is its cheapest zone's (a buyer picks the zone), like the lowest-wins rule every
SkyPilot-based source applies to duplicate rows; on-demand is the same in every zone.
"""

from __future__ import annotations

import logging
from datetime import datetime

from scrapers.base import source_url
from scrapers.gpu_names import instance_gpus
from scrapers.http import Http
from scrapers.skypilot import CATALOG_BASE_URL, CatalogRules, gpu_size_mib, mib_to_gb, parse_catalog
from warehouse.records import PriceRecord, RawCapture

NAME = "aws_skypilot"
DEFAULT_URL = f"{CATALOG_BASE_URL}/aws/vms.csv"
log = logging.getLogger(__name__)


def _gpu_name(row: dict[str, str]) -> str:
    # The instance family is exact (p4de is A100 80 GB even where GpuInfo says "A100").
    family = instance_gpus(row["InstanceType"], "aws")
    return family[0] if family else row["AcceleratorName"]


RULES = CatalogRules(
    source=NAME,
    provider="aws",
    gpu_name=_gpu_name,
    region=lambda row: row["Region"].strip(),
    memory_gb=lambda row, info: mib_to_gb(gpu_size_mib(info)),
)


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records = parse_catalog(raw, RULES)
    on_demand = {(r.sku, r.region): r.price for r in records if r.term == "on_demand"}
    # AWS caps spot at on-demand, and spot prices carry 4 decimals, so a capped zone can read
    # above the on-demand price (g5.48xlarge ap-northeast-2: spot 20.0281, on-demand 20.02809,
    # catalog 001367d2). Such a spot price is not a market price: it is left out, not rounded.
    kept = [
        r
        for r in records
        if r.term != "spot" or r.price <= on_demand.get((r.sku, r.region), r.price)
    ]
    if len(kept) < len(records):
        log.info("aws_skypilot: dropped %d spot prices above on-demand", len(records) - len(kept))
    return kept
