"""What every scraper shares: its errors, URL overrides and strict number parsing.

A scraper module exposes `NAME`, `DEFAULT_URL`, `fetch(http) -> list[RawCapture]` (I/O only) and
`parse(raw, fetched_at) -> list[PriceRecord]` (pure). `parse` raises `LayoutError` when the
response no longer looks like what it was written for; the refresh then records a failed run and
stores nothing from that source.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

from warehouse.records import RawCapture

# Sanity bounds: a price outside them is a unit mix-up (per token vs per million) or junk.
MAX_USD_PER_MTOK = Decimal(1000)
MAX_USD_PER_GPU_HOUR = Decimal(500)


class ScrapeError(Exception):
    """Base class: the source failed; the message says why in one line."""


class FetchError(ScrapeError):
    """The network or server failed after retries."""


class LayoutError(ScrapeError):
    """The response's schema or layout changed: required fields or markers are missing."""


class SkipSource(ScrapeError):
    """The source cannot run here (e.g. an API key is not set); not a failure of the data."""


def source_url(name: str, default: str) -> str:
    """The first URL of source `name`: `INFERCOST_<NAME>_URL` if set, else `default`."""
    env = "INFERCOST_" + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_URL"
    return os.environ.get(env) or default


def to_decimal(value: object) -> Decimal | None:
    """A price from JSON/CSV/HTML text, or None when it is not a usable price.

    None for: missing, empty, sentinels (-1, -2), NaN/inf, negatives, text that is not a number.
    Floats go through repr so 1.5e-06 stays exactly Decimal("0.0000015").
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
    else:
        text = str(value).strip().replace(",", "").lstrip("$")
    if not text:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0:
        return None
    return d


def per_mtok(per_token: Decimal) -> Decimal:
    """USD per token -> USD per million tokens, exactly."""
    return (per_token * 1_000_000).normalize()


def checked_price(
    value: object, dropped: Counter, *, limit: Decimal, convert: Callable | None = None
) -> Decimal | None:
    """A usable price from `value` (after `convert`, e.g. per token -> per Mtok), or None with the
    reason counted in `dropped`: "not a price" (missing, sentinel, NaN, negative, text) or
    "absurd magnitude" (above `limit`, the sign of a unit mix-up)."""
    price = to_decimal(value)
    if price is None:
        dropped["not a price"] += 1
        return None
    if convert is not None:
        price = convert(price)
    if price > limit:
        dropped["absurd magnitude"] += 1
        return None
    return price


def bodies(raw: Sequence[RawCapture] | bytes) -> list[bytes]:
    """The bodies `parse` was given: one response as bytes, or the captures of a (paged) fetch."""
    return [bytes(raw)] if isinstance(raw, bytes | bytearray) else [c.body for c in raw]


def load_json(body: bytes, source: str, what: str = "response"):
    """Parsed JSON, or a LayoutError naming the source: a page that stopped being JSON changed."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise LayoutError(f"{source}: {what} is not JSON: {exc}") from None
