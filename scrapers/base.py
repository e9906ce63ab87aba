"""What every scraper shares: its errors, URL overrides and strict number parsing.

A scraper module exposes `NAME`, `DEFAULT_URL`, `fetch(http) -> list[RawCapture]` (I/O only) and
`parse(raw, fetched_at) -> list[PriceRecord]` (pure). `parse` raises `LayoutError` when the
response no longer looks like what it was written for; the refresh then records a failed run and
stores nothing from that source.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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


class BadRows:
    """How many rows the parser dropped as unreadable (not merely absent or not offered)."""

    def __init__(self) -> None:
        self.count = 0


_BAD_ROWS: contextvars.ContextVar[BadRows | None] = contextvars.ContextVar(
    "infercost_bad_rows", default=None
)


@contextlib.contextmanager
def counting_bad_rows() -> Iterator[BadRows]:
    """Count the bad rows `parse` meets inside the block: a run with any is not complete, so
    the warehouse closes no period for a key it did not see (that key may be the bad row)."""
    tally = BadRows()
    token = _BAD_ROWS.set(tally)
    try:
        yield tally
    finally:
        _BAD_ROWS.reset(token)


def note_bad_row() -> None:
    """Record that a row was dropped because a value in it is unreadable or absurd."""
    tally = _BAD_ROWS.get()
    if tally is not None:
        tally.count += 1


def checked_price(
    value: object, dropped: Counter, *, limit: Decimal, convert: Callable | None = None
) -> Decimal | None:
    """A usable price from `value` (after `convert`, e.g. per token -> per Mtok), or None with the
    reason counted in `dropped`: "not a price" (missing, sentinel, NaN, negative, text),
    "absurd magnitude" (above `limit`, the sign of a unit mix-up) or "below the smallest
    storable price" (a positive price that would be stored as 0). Every case but a missing
    value is a bad row."""
    price = to_decimal(value)
    if price is None:
        dropped["not a price"] += 1
        if value is not None:
            note_bad_row()
        return None
    try:
        converted = convert(price) if convert is not None else price
    except ArithmeticError:  # e.g. 1e300 per token overflows the quantisation
        converted = None
    if converted is None or converted > limit:
        dropped["absurd magnitude"] += 1
        note_bad_row()
        return None
    if price > 0 and converted == 0:
        dropped["below the smallest storable price"] += 1
        note_bad_row()
        return None
    return converted


def bodies(raw: Sequence[RawCapture] | bytes) -> list[bytes]:
    """The bodies `parse` was given: one response as bytes, or the captures of a (paged) fetch."""
    return [bytes(raw)] if isinstance(raw, bytes | bytearray) else [c.body for c in raw]


def _merge_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys may repeat. The rule (docs/scrapers.md): repeated objects merge
    key by key, of two numbers the higher wins (an estimate should never understate a cost),
    identical values collapse, and any other conflict keeps the first value and is a bad row."""
    out: dict = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
        else:
            out[key] = _merge_value(out[key], value)
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _merge_value(first: object, second: object) -> object:
    if first == second:
        return first
    if isinstance(first, dict) and isinstance(second, dict):
        return _merge_duplicates([*first.items(), *second.items()])
    if _is_number(first) and _is_number(second):
        return max(first, second)
    note_bad_row()
    return first


def load_json(body: bytes, source: str, what: str = "response"):
    """Parsed JSON, or a LayoutError naming the source: a page that stopped being JSON changed.

    Repeated keys follow `_merge_duplicates`; nesting too deep to parse is a layout error."""
    try:
        return json.loads(body, object_pairs_hook=_merge_duplicates)
    except (ValueError, RecursionError) as exc:
        raise LayoutError(f"{source}: {what} is not JSON: {str(exc)[:200]}") from None


def page_link(body: bytes, field: str) -> str | None:
    """The next-page link or token a paged JSON response names in `field`, or None.

    Anything unreadable ends the paging; parse() then reports the layout problem of that page."""
    try:
        value = json.loads(body).get(field)
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and value else None
