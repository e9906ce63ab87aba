"""API token prices from OpenRouter's public model list (`GET /api/v1/models`)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from scrapers.base import (
    MAX_USD_PER_MTOK,
    LayoutError,
    bodies,
    checked_price,
    load_json,
    note_bad_row,
    source_url,
)
from scrapers.http import Http
from scrapers.litellm import mtok
from scrapers.llm_prices import dedupe
from warehouse.records import PriceRecord, RawCapture

NAME = "openrouter"
DEFAULT_URL = "https://openrouter.ai/api/v1/models"
log = logging.getLogger(__name__)

# pricing key -> warehouse unit. Prices are USD per token as strings. Keys not listed
# (image, audio, web_search per call, internal_reasoning, ...) have no warehouse unit yet.
_UNITS = {
    "prompt": "usd_per_mtok_input",
    "completion": "usd_per_mtok_output",
    "input_cache_read": "usd_per_mtok_cached_input",
    "input_cache_write": "usd_per_mtok_cache_write",
}


def fetch(http: Http) -> list[RawCapture]:
    return [http.get(source_url(NAME, DEFAULT_URL))]


_VARIABLE = frozenset({"-1", "-1.0"})


def parse(raw: list[RawCapture] | bytes, fetched_at: datetime) -> list[PriceRecord]:
    records: list[PriceRecord] = []
    dropped: Counter[str] = Counter()
    for body in bodies(raw):
        data = load_json(body, "openrouter")
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise LayoutError("openrouter: expected an object with a `data` list")
        for model in models:
            if not isinstance(model, dict) or "id" not in model or "pricing" not in model:
                raise LayoutError("openrouter: a model lacks `id` or `pricing`")
            pricing = model["pricing"]
            if not isinstance(pricing, dict):
                raise LayoutError(f"openrouter: {model['id']}: `pricing` is not an object")
            ctx = model.get("context_length")
            ctx = ctx if isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0 else None
            tiers = [(0, pricing)]
            overrides = pricing.get("overrides")
            if overrides is not None and not isinstance(overrides, list):
                note_bad_row()
                overrides = None
            for override in overrides or []:
                min_tokens = (
                    override.get("min_prompt_tokens") if isinstance(override, dict) else None
                )
                if isinstance(min_tokens, int) and min_tokens > 0:
                    tiers.append((min_tokens, override))
                else:
                    dropped["override without min_prompt_tokens"] += 1
            for tier_min, prices in tiers:
                for key, unit in _UNITS.items():
                    if key not in prices:
                        continue
                    # "-1" means "variable" (e.g. the auto router): never a price, and not
                    # a bad row either.
                    if str(prices[key]).strip() in _VARIABLE:
                        dropped["variable price"] += 1
                        continue
                    price = checked_price(
                        prices[key], dropped, limit=MAX_USD_PER_MTOK, convert=mtok
                    )
                    if price is None:
                        continue
                    records.append(
                        PriceRecord(
                            source=NAME,
                            kind="api_token",
                            provider="openrouter",
                            sku=model["id"],
                            region="",
                            term="on_demand",
                            unit=unit,
                            price=price,
                            tier_min_tokens=tier_min,
                            context_length=ctx,
                        )
                    )
    records = dedupe(records, dropped)
    if not records:
        raise LayoutError("openrouter: no usable price in the model list")
    if dropped:
        log.info("openrouter: %d prices, dropped %s", len(records), dict(dropped))
    return records
