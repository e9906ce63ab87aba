"""API token prices for thousands of models from LiteLLM's public model price map (one JSON file)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal

from scrapers.base import (
    MAX_USD_PER_MTOK,
    LayoutError,
    bodies,
    checked_price,
    load_json,
    per_mtok,
    source_url,
)
from scrapers.http import Http
from warehouse.records import PriceRecord, RawCapture

NAME = "litellm"
DEFAULT_URL = (
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
)
log = logging.getLogger(__name__)

# Token price keys we store, e.g. `input_cost_per_token_above_128k_tokens_batches`. Other
# service tiers (flex, priority, ...) and non-token units (images, audio, seconds) have no
# place in the warehouse vocabulary yet and are left out on purpose.
_TOKEN_KEY = re.compile(
    r"^(?P<what>input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)(?:_above_(?P<k>\d+)k_tokens)?(?P<batch>_batches)?$"
)
_UNITS = {
    "input_cost_per_token": "usd_per_mtok_input",
    "output_cost_per_token": "usd_per_mtok_output",
    "cache_read_input_token_cost": "usd_per_mtok_cached_input",
    "cache_creation_input_token_cost": "usd_per_mtok_cache_write",
}
_SKIP_KEYS = {"sample_spec"}  # a schema example in the map, not a model
# Every key `parse` reads besides the token price keys: what a stored historical map keeps.
KEPT_KEYS = frozenset(
    {"litellm_provider", "max_input_tokens", "max_tokens", "input_cost_per_request"}
)


def trim_map(data: dict) -> dict:
    """The price map with only what `parse` reads, so many releases fit in the repository."""
    return {
        model: {k: v for k, v in entry.items() if k in KEPT_KEYS or _TOKEN_KEY.match(k)}
        for model, entry in data.items()
        if isinstance(entry, dict) and model not in _SKIP_KEYS
    }


# JSON floats carry binary noise (LiteLLM's databricks rows: 2.99999e-06 is 2.9999900000000002e-06).
# No one quotes a price finer than a billionth of a dollar per million tokens, so rounding there
# removes only the noise; it also keeps the warehouse's 12-decimal column exact.
_MTOK_QUANTUM = Decimal("1e-9")


def mtok(per_token: Decimal) -> Decimal:
    """USD per token -> USD per million tokens, float noise removed, in plain notation."""
    d = per_mtok(per_token).quantize(_MTOK_QUANTUM).normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


def _context_length(entry: dict) -> int | None:
    for key in ("max_input_tokens", "max_tokens"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        data = load_json(body, "litellm")
        if not isinstance(data, dict):
            raise LayoutError("litellm: expected a JSON object of model -> prices")
        models = {k: v for k, v in data.items() if k not in _SKIP_KEYS and isinstance(v, dict)}
        if not any("litellm_provider" in v for v in models.values()):
            raise LayoutError("litellm: no entry has `litellm_provider`; the map's schema changed")
        for sku, entry in models.items():
            provider = entry.get("litellm_provider")
            if not isinstance(provider, str) or not provider:
                dropped["no provider"] += 1
                continue
            ctx = _context_length(entry)
            for key, value in entry.items():
                m = _TOKEN_KEY.match(key)
                if m:
                    if value is None:
                        continue  # the map says "unknown": nothing to store
                    price = checked_price(value, dropped, limit=MAX_USD_PER_MTOK, convert=mtok)
                    if price is None:
                        continue
                    records.append(
                        PriceRecord(
                            source=NAME,
                            kind="api_token",
                            provider=provider,
                            sku=sku,
                            region="",
                            term="batch" if m["batch"] else "on_demand",
                            unit=_UNITS[m["what"]],
                            price=price,
                            tier_min_tokens=int(m["k"]) * 1000 if m["k"] else 0,
                            context_length=ctx,
                        )
                    )
                elif key == "input_cost_per_request" and value is not None:
                    # No API call costs $100: above that it is a unit mix-up.
                    price = checked_price(value, dropped, limit=Decimal(100))
                    if price is None:
                        continue
                    records.append(
                        PriceRecord(
                            source=NAME,
                            kind="api_request",
                            provider=provider,
                            sku=sku,
                            region="",
                            term="on_demand",
                            unit="usd_per_request",
                            price=price.normalize(),
                            context_length=ctx,
                        )
                    )
    if not records:
        raise LayoutError("litellm: no usable token price in the map")
    if dropped:
        log.info("litellm: %d prices, dropped %s", len(records), dict(dropped))
    return records
