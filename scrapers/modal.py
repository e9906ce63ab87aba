"""Serverless GPU prices per second from Modal's public pricing page (HTML, read with BeautifulSoup)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal

from bs4 import BeautifulSoup

from scrapers.base import MAX_USD_PER_GPU_HOUR, LayoutError, bodies, source_url, to_decimal
from scrapers.gpu_names import canonical_gpu
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "modal"
DEFAULT_URL = "https://modal.com/pricing"
log = logging.getLogger(__name__)

# Layout observed in the saved page of 2025-06-12: each price is
# <div class="line-item"><p>Nvidia H100</p><p class="price">$0.001097 <span>/ sec</span></p></div>.
# CPU and memory rows share the layout; only rows naming a GPU maker are GPUs.
_GPU_NAME = re.compile(r"^(nvidia|amd)\b", re.IGNORECASE)
_MIN_GPU_ROWS = 3  # the page has listed 9+ GPUs since 2024; fewer means the layout moved


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        soup = BeautifulSoup(body, "html.parser")
        gpu_rows = 0
        for item in soup.select("div.line-item"):
            name_el = item.find("p")
            price_el = item.select_one("p.price")
            if name_el is None or price_el is None:
                continue
            name = " ".join(name_el.get_text(" ", strip=True).split())
            if not _GPU_NAME.match(name):
                continue
            gpu_rows += 1
            unit_el = price_el.find("span")
            unit_text = unit_el.get_text(strip=True) if unit_el else ""
            if unit_text.replace(" ", "") != "/sec":
                dropped[f"unit {unit_text!r} is not per second"] += 1
                continue
            if unit_el is not None:
                unit_el.extract()
            per_s = to_decimal(price_el.get_text(strip=True))
            if per_s is None:
                dropped["not a price"] += 1
                continue
            per_hour = (per_s * 3600).normalize()
            if per_hour > MAX_USD_PER_GPU_HOUR:
                dropped["absurd magnitude"] += 1
                continue
            common = dict(
                source=NAME,
                kind="gpu_serverless",
                provider="modal",
                sku=name,
                region="",
                term="on_demand",
                gpu_model=canonical_gpu(name, NAME),
                gpu_name_source=name,
                gpu_count=1.0,
            )
            records.append(PriceRecord(unit="usd_per_second", price=per_s, **common))
            records.append(PriceRecord(unit="usd_per_gpu_hour", price=_plain(per_hour), **common))
        if gpu_rows < _MIN_GPU_ROWS:
            raise LayoutError(
                f"modal: found {gpu_rows} GPU price rows (div.line-item), expected at least "
                f"{_MIN_GPU_ROWS}; the pricing page layout changed"
            )
    if dropped:
        log.info("modal: %d prices, dropped %s", len(records), dict(dropped))
    return records


def _plain(d: Decimal) -> Decimal:
    # normalize() turns 36 into 3.6E+1; keep integral values in plain notation.
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d
