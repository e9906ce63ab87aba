"""llm-prices.com: the current index plus per-vendor history files, fetched over HTTP.

Expected values read from tests/fixtures/prices/simonw_llm_prices_*.json (USD per Mtok).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from scrapers import llm_prices
from scrapers.refresh import refresh

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _serve_all(serve, fixture_bytes):
    serve(
        "llm_prices", "/current-v1.json", fixture_bytes("simonw_llm_prices_current_v1_trimmed.json")
    )
    for vendor in ("anthropic", "deepseek", "xai"):
        serve(
            None, f"/data/{vendor}.json", fixture_bytes(f"simonw_llm_prices_{vendor}_excerpt.json")
        )
    # The other vendors in the index have no history file here: the server answers 404.


def test_index_and_history_over_http(wh, serve, fast_http, fixture_bytes):
    _serve_all(serve, fixture_bytes)
    (result,) = refresh(wh, ["llm_prices"], http_factory=fast_http)
    assert result.status == "ok", result.error
    rows = wh.query(
        "SELECT provider, sku, unit, price, valid_from, valid_to FROM price_history "
        "WHERE source = 'llm_prices' ORDER BY provider, sku, unit, valid_from"
    ).rows()
    by = {(r[1], r[2], r[4]): (r[3], r[5]) for r in rows}
    # deepseek-chat: 0.27 input / 1.1 output from 2025-02-08 (file lists the newest period first).
    feb8 = datetime(2025, 2, 8)
    assert by[("deepseek-chat", "usd_per_mtok_input", feb8)] == (Decimal("0.27"), None)
    assert by[("deepseek-chat", "usd_per_mtok_output", feb8)] == (Decimal("1.1"), None)
    # claude-sonnet-5: 3 input from 2026-09-01 (announced change 2 -> 3).
    assert by[("claude-sonnet-5", "usd_per_mtok_input", datetime(2026, 9, 1))][0] == Decimal("3")
    # amazon-nova-micro has no history file served: its index price 0.035 stands.
    current = {(r[1], r[2]): r[3] for r in rows if r[4] is not None}
    assert current[("amazon-nova-micro", "usd_per_mtok_input")] == Decimal("0.035")
    # grok-4-fast is listed twice in xai.json with the same prices: stored once.
    assert sum(1 for r in rows if r[1] == "grok-4-fast" and r[2] == "usd_per_mtok_input") == 1
    # 4 fetches: the index and 3 history files (the 8 other vendors were 404s).
    assert len(wh.captures_for_run(result.run_id)) == 4


def test_closed_period_without_start_is_not_invented(fixture_bytes):
    records = llm_prices.parse(fixture_bytes("simonw_llm_prices_deepseek_excerpt.json"), NOW)
    chat = [r for r in records if r.sku == "deepseek-chat"]
    # The 0.14 period has from_date null and to_date 2025-02-08: no start to store, so dropped.
    assert {r.price for r in chat} == {Decimal("0.27"), Decimal("1.1")}
    assert all(r.valid_from == datetime(2025, 2, 8, tzinfo=UTC) for r in chat)


def test_vendor_file_without_models_is_a_layout_error(fixture_bytes):
    import pytest

    from scrapers.base import LayoutError

    with pytest.raises(LayoutError):
        llm_prices.parse(b'{"vendor": "x", "items": []}', NOW)
    with pytest.raises(LayoutError, match="YYYY-MM-DD"):
        llm_prices.parse(
            b'{"vendor": "x", "models": [{"id": "m", "price_history": '
            b'[{"input": 1, "output": 2, "from_date": "01/02/2025", "to_date": null}]}]}',
            NOW,
        )
