"""Dated API price history from llm-prices.com: the current price index plus per-vendor history files.

Used to back-fill price periods that no other source recorded. Prices are USD per million tokens.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urljoin

from scrapers.base import (
    MAX_USD_PER_MTOK,
    FetchError,
    LayoutError,
    bodies,
    checked_price,
    load_json,
    source_url,
)
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "llm_prices"
DEFAULT_URL = "https://www.llm-prices.com/current-v1.json"
# Vendor history files sit beside the index as `data/<vendor>.json` (the site is built from the
# simonw/llm-prices repository, whose history lives in `data/`).
HISTORY_PATH = "data/{vendor}.json"
log = logging.getLogger(__name__)

_UNITS = {
    "input": "usd_per_mtok_input",
    "output": "usd_per_mtok_output",
    "input_cached": "usd_per_mtok_cached_input",
}


def _json(body: bytes, what: str):
    return load_json(body, "llm_prices", what)


def _index_vendors(body: bytes) -> list[str]:
    data = _json(body, "current-v1.json")
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise LayoutError("llm_prices: current-v1.json has no `prices` list")
    return sorted({p["vendor"] for p in data["prices"] if isinstance(p, dict) and p.get("vendor")})


def fetch(http: Http) -> list[RawCapture]:
    index_url = source_url(NAME, DEFAULT_URL)
    index = http.get(index_url)
    captures = [index]
    for vendor in _index_vendors(index.body):
        try:
            captures.append(http.get(urljoin(index_url, HISTORY_PATH.format(vendor=vendor))))
        except FetchError as exc:
            # A vendor without a history file still has its current prices from the index.
            log.warning(
                "llm_prices: no history for %s (%s); using current prices only", vendor, exc
            )
    return captures


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise LayoutError(f"llm_prices: date {value!r} is not YYYY-MM-DD") from None


def _records(vendor, model_id, period, valid_from, valid_to, dropped) -> list[PriceRecord]:
    out = []
    for key, unit in _UNITS.items():
        if period.get(key) is None:
            continue
        price = checked_price(period[key], dropped, limit=MAX_USD_PER_MTOK)
        if price is None:
            continue
        out.append(
            PriceRecord(
                source=NAME,
                kind="api_token",
                provider=vendor,
                sku=model_id,
                region="",
                term="on_demand",
                unit=unit,
                price=price,
                valid_from=valid_from,
                valid_to=valid_to,
            )
        )
    return out


def natural_key(r: PriceRecord) -> tuple:
    return (r.kind, r.provider, r.sku, r.region, r.term, r.unit, r.tier_min_tokens, r.valid_from)


def dedupe(records: list[PriceRecord], dropped: Counter) -> list[PriceRecord]:
    """One record per natural key, deterministically: identical repeats collapse; when the same
    key carries different prices the highest is kept (an estimate should never understate a
    cost) and the conflict is counted."""
    best: dict[tuple, PriceRecord] = {}
    for r in records:
        key = natural_key(r)
        kept = best.get(key)
        if kept is None:
            best[key] = r
        elif kept.price != r.price:
            dropped["conflicting duplicate (kept the higher price)"] += 1
            if r.price > kept.price:
                best[key] = r
        else:
            dropped["repeated row"] += 1
    return list(best.values())


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    history: list[PriceRecord] = []
    current: list[PriceRecord] = []
    covered: set[tuple[str, str]] = set()
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        data = _json(body, "response")
        if isinstance(data, dict) and isinstance(data.get("prices"), list):
            for p in data["prices"]:
                if not isinstance(p, dict) or not p.get("id") or not p.get("vendor"):
                    raise LayoutError("llm_prices: an index entry lacks `id` or `vendor`")
                current.extend(_records(p["vendor"], p["id"], p, None, None, dropped))
        elif isinstance(data, dict) and isinstance(data.get("models"), list) and data.get("vendor"):
            vendor = data["vendor"]
            for model in data["models"]:
                periods = model.get("price_history") if isinstance(model, dict) else None
                if not model.get("id") or not isinstance(periods, list):
                    raise LayoutError(f"llm_prices: {vendor}: a model lacks `id`/`price_history`")
                covered.add((vendor, model["id"]))
                # Files do not keep periods in date order (deepseek-chat lists the newest first).
                dated = [(_date(p.get("from_date")), _date(p.get("to_date")), p) for p in periods]
                dated.sort(
                    key=lambda t: (t[0] is not None, t[0] or datetime.min.replace(tzinfo=UTC))
                )
                for valid_from, valid_to, period in dated:
                    if valid_from and valid_to and valid_to <= valid_from:
                        dropped["period ends before it starts"] += 1
                        continue
                    if valid_from is None and valid_to is not None:
                        # A closed period with no start date: the warehouse stores a dated
                        # period only with its start, and we do not invent one.
                        dropped["closed period without a start date"] += 1
                        continue
                    history.extend(
                        _records(vendor, model["id"], period, valid_from, valid_to, dropped)
                    )
        else:
            raise LayoutError(
                "llm_prices: neither an index (`prices`) nor a vendor file (`models`)"
            )
    # The vendor history is the fuller account; the index only fills in models it lacks.
    records = history + [r for r in current if (r.provider, r.sku) not in covered]
    records = dedupe(records, dropped)
    if not records:
        raise LayoutError("llm_prices: no usable price")
    if dropped:
        log.info("llm_prices: %d prices, dropped %s", len(records), dict(dropped))
    return records
