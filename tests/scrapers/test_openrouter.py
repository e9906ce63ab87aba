"""OpenRouter model list: recorded response over HTTP, prices checked by hand against the file.

tests/fixtures/prices/openrouter_models.json gives USD per token as strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from scrapers import openrouter
from scrapers.llm_prices import dedupe
from scrapers.refresh import refresh
from warehouse.records import PriceRecord

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FILE = "openrouter_models.json"


def test_over_http_to_the_cent(wh, serve, fast_http, fixture_bytes, prices_of):
    serve("openrouter", "/api/v1/models", fixture_bytes(FILE))
    (result,) = refresh(wh, ["openrouter"], http_factory=fast_http)
    assert result.status == "ok", result.error
    p = prices_of(wh, "openrouter")
    # anthropic/claude-opus-5: prompt "0.000005", completion "0.000025",
    # input_cache_read "0.0000005", input_cache_write "0.00000625".
    opus = "anthropic/claude-opus-5"
    assert p[(opus, "usd_per_mtok_input", 0, "on_demand")] == Decimal("5")
    assert p[(opus, "usd_per_mtok_output", 0, "on_demand")] == Decimal("25")
    assert p[(opus, "usd_per_mtok_cached_input", 0, "on_demand")] == Decimal("0.5")
    assert p[(opus, "usd_per_mtok_cache_write", 0, "on_demand")] == Decimal("6.25")
    # ~google/gemini-pro-latest: base prompt 0.000002; overrides above 200000 prompt tokens:
    # prompt "0.000004", completion "0.000018".
    gem = "~google/gemini-pro-latest"
    assert p[(gem, "usd_per_mtok_input", 0, "on_demand")] == Decimal("2")
    assert p[(gem, "usd_per_mtok_input", 200_000, "on_demand")] == Decimal("4")
    assert p[(gem, "usd_per_mtok_output", 200_000, "on_demand")] == Decimal("18")
    # openrouter/auto-beta: "-1" means variable pricing, never a price.
    assert not any(sku == "openrouter/auto-beta" for sku, *_ in p)


def _mutated(fixture_json, **prompt_by_id) -> bytes:
    data = fixture_json(FILE)
    for model in data["data"]:
        if model["id"] in prompt_by_id:
            model["pricing"]["prompt"] = prompt_by_id[model["id"]]
    return json.dumps(data).encode()


def test_bad_strings_are_dropped(fixture_json):
    body = _mutated(
        fixture_json,
        **{
            "anthropic/claude-opus-5": "NaN",
            "google/gemini-3-pro-image": "-0.000002",
            "openai/gpt-audio": "call us",
            "perplexity/sonar-deep-research": "2",  # 2 USD per token: a per-Mtok value misplaced
        },
    )
    records = openrouter.parse(body, NOW)
    inputs = {r.sku for r in records if r.unit == "usd_per_mtok_input" and r.tier_min_tokens == 0}
    assert inputs == {"~google/gemini-pro-latest"}
    # Their completion prices survive: openai/gpt-audio completion "0.00001".
    assert any(
        r.sku == "openai/gpt-audio" and r.unit == "usd_per_mtok_output" and r.price == 10
        for r in records
    )


def test_layout_change_fails_and_stores_nothing(wh, serve, fast_http, fixture_json, prices_of):
    data = fixture_json(FILE)
    serve("openrouter", "/api/v1/models", json.dumps({"models": data["data"]}))
    (result,) = refresh(wh, ["openrouter"], http_factory=fast_http)
    assert result.status == "failed" and "`data`" in result.error
    assert prices_of(wh, "openrouter") == {}


def test_duplicate_ids_keep_the_higher_price(fixture_json):
    data = fixture_json(FILE)
    twin = json.loads(json.dumps(data["data"][0]))
    twin["pricing"]["prompt"] = "0.000004"  # 4 USD/Mtok against the original's 5
    for order in ([data["data"][0], twin], [twin, data["data"][0]]):
        body = json.dumps({"data": order + data["data"][1:]}).encode()
        records = openrouter.parse(body, NOW)
        opus = [
            r
            for r in records
            if r.sku == "anthropic/claude-opus-5" and r.unit == "usd_per_mtok_input"
        ]
        assert [r.price for r in opus] == [Decimal("5")]


_record = st.builds(
    lambda sku, price: PriceRecord(
        source="t",
        kind="api_token",
        provider="p",
        sku=sku,
        region="",
        term="on_demand",
        unit="usd_per_mtok_input",
        price=Decimal(price),
    ),
    st.sampled_from(["a", "b", "c"]),
    st.integers(min_value=0, max_value=100),
)


@given(st.lists(_record, max_size=12), st.randoms())
def test_dedupe_is_order_independent(records, rnd):
    shuffled = list(records)
    rnd.shuffle(shuffled)
    by_sku = lambda rs: {r.sku: r.price for r in rs}  # noqa: E731
    once = dedupe(records, __import__("collections").Counter())
    assert by_sku(once) == by_sku(dedupe(shuffled, __import__("collections").Counter()))
    assert len(once) == len({r.sku for r in records})
    for r in records:
        assert by_sku(once)[r.sku] >= r.price
