"""Vast.ai GPU offer prices, from SkyPilot's public Vast catalog CSV.

Vast is a marketplace: SkyPilot's catalog condenses its offers into one price per instance shape
and location. Vast has no spot market in that catalog (SpotPrice is 0.00 on every row).
"""

from __future__ import annotations

import re
from datetime import datetime

from scrapers.base import source_url
from scrapers.http import Http
from scrapers.skypilot import CATALOG_BASE_URL, CatalogRules, parse_catalog, per_gpu_total
from warehouse.records import PriceRecord, RawCapture

NAME = "vast"
DEFAULT_URL = f"{CATALOG_BASE_URL}/vast/vms.csv"


def _gpu_name(row: dict[str, str]) -> str:
    # "1x-RTX_4080S-32-65536" -> "RTX_4080S": SkyPilot's AcceleratorName drops SUPER, SXM and NVL.
    match = re.fullmatch(r"\d+x-(.+)-\d+-\d+", row["InstanceType"].strip())
    return match.group(1) if match else row["AcceleratorName"]


# Vast's GpuInfo SizeInMiB is the total over all GPUs of the offer. The region is Vast's own
# "State, CC, Continent" text (state may be empty), kept verbatim.
RULES = CatalogRules(
    source=NAME,
    provider="vast",
    gpu_name=_gpu_name,
    region=lambda row: row["Region"].strip(),
    memory_gb=lambda row, info: per_gpu_total(info, row["AcceleratorCount"]),
)


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    return parse_catalog(raw, RULES)
