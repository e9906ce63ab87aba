"""Lambda Cloud GPU instance prices, from SkyPilot's public Lambda catalog CSV.

Lambda's own API needs an account key and returns only the caller's view; SkyPilot's catalog
is public, refreshed by its maintainers, and keeps every region.
"""

from __future__ import annotations

import re
from datetime import datetime

from scrapers.base import source_url
from scrapers.http import Http
from scrapers.skypilot import CATALOG_BASE_URL, CatalogRules, gpu_size_mib, mib_to_gb, parse_catalog
from warehouse.records import PriceRecord, RawCapture

NAME = "lambda"
DEFAULT_URL = f"{CATALOG_BASE_URL}/lambda/vms.csv"


def _gpu_name(row: dict[str, str]) -> str:
    # gpu_8x_h100_sxm5 -> "h100_sxm5": the instance type tells SXM from PCIe, AcceleratorName not.
    match = re.fullmatch(r"gpu_\d+x_(.+)", row["InstanceType"].strip())
    return match.group(1) if match else row["AcceleratorName"]


# Lambda's GpuInfo gives the per-GPU size (TotalGpuMemoryInMiB is not multiplied by the count).
RULES = CatalogRules(
    source=NAME,
    provider="lambda",
    gpu_name=_gpu_name,
    region=lambda row: row["Region"].strip(),
    memory_gb=lambda row, info: mib_to_gb(gpu_size_mib(info)),
)


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    return parse_catalog(raw, RULES)
