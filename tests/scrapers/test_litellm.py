"""LiteLLM price map: recorded maps fetched over HTTP, values checked to the cent by hand.

Expected values were read from tests/fixtures/prices/litellm_model_prices_*.json (USD per token
in the file, times 10^6 here).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import litellm
from scrapers.refresh import refresh

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MAP_110 = "litellm_model_prices_1.110.2.json"


@pytest.fixture
def run(wh, fast_http):
    def _run():
        (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
        return result

    return _run


def test_1_110_2_over_http_to_the_cent(wh, serve, run, fixture_bytes, prices_of):
    serve("litellm", "/litellm.json", fixture_bytes(MAP_110))
    result = run()
    assert result.status == "ok", result.error
    p = prices_of(wh, "litellm")
    # gpt-3.5-turbo: input_cost_per_token 5e-07, output 1.5e-06.
    assert p[("gpt-3.5-turbo", "usd_per_mtok_input", 0, "on_demand")] == Decimal("0.5")
    assert p[("gpt-3.5-turbo", "usd_per_mtok_output", 0, "on_demand")] == Decimal("1.5")
    # azure/gpt-4o: 2.5e-06 (was 5e-06 in 1.53.1).
    assert p[("azure/gpt-4o", "usd_per_mtok_input", 0, "on_demand")] == Decimal("2.5")
    # gpt-4o: cache_read 1.25e-06, input batches 1.25e-06, output batches 5e-06.
    assert p[("gpt-4o", "usd_per_mtok_cached_input", 0, "on_demand")] == Decimal("1.25")
    assert p[("gpt-4o", "usd_per_mtok_input", 0, "batch")] == Decimal("1.25")
    assert p[("gpt-4o", "usd_per_mtok_output", 0, "batch")] == Decimal("5")
    # gemini/gemini-2.5-pro: above 200k tokens input 2.5e-06, output 1.5e-05; batch tier too.
    assert p[("gemini/gemini-2.5-pro", "usd_per_mtok_input", 200_000, "on_demand")] == Decimal(
        "2.5"
    )
    assert p[("gemini/gemini-2.5-pro", "usd_per_mtok_output", 200_000, "on_demand")] == Decimal(
        "15"
    )
    assert p[("gemini/gemini-2.5-pro", "usd_per_mtok_input", 200_000, "batch")] == Decimal("1.25")
    # claude-sonnet-4-5: cache_creation_input_token_cost 3.75e-06.
    assert p[("claude-sonnet-4-5", "usd_per_mtok_cache_write", 0, "on_demand")] == Decimal("3.75")
    # perplexity/pplx-70b-online: input_cost_per_request 0.005 USD.
    assert p[("perplexity/pplx-70b-online", "usd_per_request", 0, "on_demand")] == Decimal("0.005")
    assert not any(sku == "sample_spec" for sku, *_ in p)
    provider = wh.query(
        "SELECT provider, context_length FROM prices WHERE sku = 'gpt-3.5-turbo' LIMIT 1"
    ).row(0)
    assert provider == ("openai", 16385)  # litellm_provider, max_input_tokens


def test_real_price_change_between_maps(wh, serve, run, fixture_bytes):
    serve("litellm", "/litellm.json", fixture_bytes("litellm_model_prices_1.53.1.json"))
    assert run().status == "ok"
    serve("litellm", "/litellm.json", fixture_bytes(MAP_110))
    assert run().status == "ok"
    hist = wh.query(
        "SELECT price, valid_to IS NULL AS open FROM price_history WHERE sku = 'gpt-3.5-turbo' "
        "AND unit = 'usd_per_mtok_input' AND term = 'on_demand' ORDER BY valid_from"
    ).rows()
    assert hist == [(Decimal("1.5"), False), (Decimal("0.5"), True)]


def test_json_floats_keep_exact_decimals(fixture_bytes):
    # 1.14.4 gpt-4: input 3e-05 -> 30 USD/Mtok exactly, not 30.000000000000004.
    records = litellm.parse(fixture_bytes("litellm_model_prices_1.14.4.json"), NOW)
    gpt4 = {r.unit: r.price for r in records if r.sku == "gpt-4"}
    assert gpt4 == {"usd_per_mtok_input": Decimal("30"), "usd_per_mtok_output": Decimal("60")}
    assert str(gpt4["usd_per_mtok_input"]) == "30"


def test_float_noise_is_rounded_away():
    body = json.dumps(
        {"m": {"litellm_provider": "x", "input_cost_per_token": 2.9999900000000002e-06}}
    )
    (r,) = litellm.parse(body.encode(), NOW)
    assert r.price == Decimal("2.99999")


def _mutated(fixture_json, **changes) -> bytes:
    data = fixture_json("litellm_model_prices_1.53.1.json")
    for sku, (key, value) in changes.items():
        data[sku][key] = value
    return json.dumps(data).encode()


def test_bad_values_are_dropped_never_stored(fixture_json):
    body = _mutated(
        fixture_json,
        **{
            "gpt-4": ("input_cost_per_token", -1),  # sentinel
            "gpt-4o": ("input_cost_per_token", float("nan")),  # NaN (json.dumps writes NaN)
            "gpt-4o-mini": ("input_cost_per_token", -3e-06),  # negative
            "gpt-3.5-turbo": ("input_cost_per_token", "free"),  # not a number
            # per-token vs per-million mix-up: 1.5 USD per token = 1.5M USD per Mtok
            "gpt-4-turbo": ("input_cost_per_token", 1.5),
        },
    )
    records = litellm.parse(body, NOW)
    inputs = {r.sku for r in records if r.unit == "usd_per_mtok_input" and r.term == "on_demand"}
    for sku in ("gpt-4", "gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo", "gpt-4-turbo"):
        assert sku not in inputs
    # Their other prices still stand (gpt-4 output 6e-05 in 1.53.1).
    assert any(
        r.sku == "gpt-4" and r.unit == "usd_per_mtok_output" and r.price == 60 for r in records
    )


def test_layout_change_fails_the_run_and_stores_nothing(wh, serve, run, fixture_json, prices_of):
    renamed = {
        k: {("provider" if kk == "litellm_provider" else kk): vv for kk, vv in v.items()}
        for k, v in fixture_json("litellm_model_prices_1.14.4.json").items()
    }
    serve("litellm", "/litellm.json", json.dumps(renamed))
    result = run()
    assert result.status == "failed"
    assert "litellm_provider" in result.error
    assert prices_of(wh, "litellm") == {}
    # The raw response is kept so a fixed parser can read it later.
    assert len(wh.captures_for_run(result.run_id)) == 1


def test_not_json_fails(wh, serve, run):
    serve("litellm", "/litellm.json", "<html>rate limited</html>", content_type="text/html")
    result = run()
    assert result.status == "failed" and "not JSON" in result.error
