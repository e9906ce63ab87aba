"""AWS GPU instance on-demand and spot prices from SkyPilot's public AWS catalog CSV.

The catalog has one row per availability zone, each with that zone's spot price. A region's
spot price here is its cheapest zone's (a buyer picks the zone), like the lowest-wins rule every
SkyPilot-based source applies to duplicate rows; on-demand is the same in every zone.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime

from scrapers.base import bodies, source_url
from scrapers.gpu_names import instance_gpus
from scrapers.http import Http
from scrapers.skypilot import (
    CATALOG_BASE_URL,
    CatalogRules,
    gpu_size_mib,
    mib_to_gb,
    parse_catalog,
    read_rows,
)
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


def _named_accelerators(body: bytes) -> bytes:
    """The catalog with AcceleratorName/Count filled from the instance family where empty.

    trn2.48xlarge has no AcceleratorName in catalog 001367d2; its family fixes 16 Trainium2.
    Only families with a fixed count are filled; every other row is passed on unchanged.
    """
    rows = read_rows(body, NAME)
    filled = False
    for row in rows:
        family = (
            None if row["AcceleratorName"].strip() else instance_gpus(row["InstanceType"], "aws")
        )
        if family and family[1]:
            row["AcceleratorName"], row["AcceleratorCount"] = family[0], str(family[1])
            filled = True
    if not filled:
        return body
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records = [r for body in bodies(raw) for r in parse_catalog(_named_accelerators(body), RULES)]
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
