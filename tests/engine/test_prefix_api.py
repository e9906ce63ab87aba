"""API prompt caching under each provider's rules (sim/engine/api_cache.py): minimum prefix,
increments, lifetime refreshed on use, cache writes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import simulate_fleet
from sim.engine.api_cache import known_providers, rules_for, warm_prefixes
from sim.engine.config import ApiFleetConfig
from sim.engine.prefix import PrefixKeys
from tests.engine.test_prefix_engine import _with_ids

PREFIX = list(range(128))  # 2,048 tokens in blocks of 16


def _api(provider: str, **kw) -> ApiFleetConfig:
    return ApiFleetConfig(
        name="api", provider=provider, price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=2.0, price_usd_per_mtok_cached_input=0.1,
        prompt_cache="provider", network_rtt_s=0.0, ttft_s=0.5, output_tokens_per_s=100.0, **kw,
    )  # fmt: skip


def _same_prefix(times, own_blocks=3):
    rows = [PREFIX + [10_000 + 10 * i + k for k in range(own_blocks)] for i in range(len(times))]
    return _with_ids(times, (128 + own_blocks) * 16, 10, rows)


def test_every_rules_row_has_a_source_and_a_date():
    for provider in known_providers():
        rules = rules_for(provider)
        assert rules.source_url.startswith("https://") and rules.checked >= "2026"
        assert rules.min_prefix_tokens >= 1 and rules.ttl_s > 0


def test_a_prefix_reused_within_its_lifetime_is_cached_and_after_it_is_not():
    # OpenAI: 5 minutes idle. Sent at 0 (writes), 100 (reads, refreshes to 400), 390 (reads),
    # then 1000: the prefix has been idle 610 s, expired.
    r = simulate_fleet(_api("openai"), _same_prefix([0.0, 100.0, 390.0, 1000.0]), profile_factory=None, rng=np.random.default_rng(0))  # fmt: skip
    # 2,048 prefix tokens, a multiple of the 128-token increment.
    assert r.meta["cached_input_tokens"] == 2 * 2048
    assert r.meta["cache_write_tokens"] == 0  # OpenAI does not bill writes
    per_request = (np.array([0, 2048, 2048, 0]) * 0.1 + (2096 - np.array([0, 2048, 2048, 0])) * 1.0 + 10 * 2.0) / 1e6  # fmt: skip
    np.testing.assert_allclose(r.cost_usd, per_request, rtol=1e-12)


def test_a_prompt_under_the_minimum_is_never_cached():
    # 960 tokens: under OpenAI's 1,024, though the same 60 blocks repeat.
    rows = [list(range(60))] * 3
    w = _with_ids([0.0, 10.0, 20.0], 960, 5, rows)
    r = simulate_fleet(_api("openai"), w, profile_factory=None, rng=np.random.default_rng(0))
    assert r.meta["cached_input_tokens"] == 0


def test_cached_tokens_come_in_increments():
    # The second request shares 70 blocks (1,120 tokens) with the first: OpenAI counts cached
    # tokens from 1,024 in steps of 128, so 1,024 of them are billed as cached.
    values = np.array(list(range(75)) + list(range(70)) + [900, 901, 902, 903, 904])
    keys = PrefixKeys([0, 75, 150], values, 16, 16, [1200, 1200])
    cached, written = warm_prefixes(
        rules_for("openai"), keys, np.array([0, 1]), np.array([0.0, 5.0]),
        np.array([0.5, 5.5]), np.array([1200, 1200]), np.array([True, True]),
    )  # fmt: skip
    assert cached.tolist() == [0, 1024]
    assert written.tolist() == [0, 0]


def test_anthropic_bills_writes_and_the_one_hour_lifetime_costs_more():
    w = _same_prefix([0.0, 100.0, 1000.0])
    five = simulate_fleet(_api("anthropic"), w, profile_factory=None, rng=np.random.default_rng(0))  # fmt: skip
    # 5 minutes: written at 0, read at 100, expired by 1000 and written again.
    assert five.meta["cached_input_tokens"] == 2048
    assert five.meta["cache_write_tokens"] == 2096 + 48 + 2096
    hour = simulate_fleet(_api("anthropic", prompt_cache_ttl_s=3600.0), w, profile_factory=None, rng=np.random.default_rng(0))  # fmt: skip
    assert hour.meta["cached_input_tokens"] == 2 * 2048
    # Writes at 1.25x (5 min) and 2x (1 h) the input price: the rules' multipliers.
    assert five.cost_usd[0] == pytest.approx((2096 * 1.25 + 10 * 2.0) / 1e6)
    assert hour.cost_usd[0] == pytest.approx((2096 * 2.0 + 10 * 2.0) / 1e6)


def test_a_request_sent_before_the_first_has_computed_the_prefix_misses():
    # The second request is sent at 0.2 s, before the first's prefix is warm (its first token
    # at 0.5 s): both pay full price.
    r = simulate_fleet(_api("openai"), _same_prefix([0.0, 0.2]), profile_factory=None, rng=np.random.default_rng(0))  # fmt: skip
    assert r.meta["cached_input_tokens"] == 0


def test_unknown_rules_and_lifetimes_are_refused():
    with pytest.raises(ValueError, match="no prompt-caching rules"):
        rules_for("together_ai")
    with pytest.raises(ValueError, match="lifetimes"):
        rules_for("openai", ttl_s=3600)


def test_unset_prompt_cache_bills_the_trace_count_as_before():
    w = _same_prefix([0.0, 100.0])
    cfg = ApiFleetConfig(
        name="api", price_usd_per_mtok_input=1.0, price_usd_per_mtok_output=2.0,
        price_usd_per_mtok_cached_input=0.1,
    )  # fmt: skip
    r = simulate_fleet(cfg, w, profile_factory=None, rng=np.random.default_rng(0))
    assert r.meta["prompt_cache"] == "trace" and r.meta["cached_input_tokens"] == 0
