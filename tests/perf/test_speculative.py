"""Speculative decoding as a profile wrapper (sim/perf/speculative.py): the expected-tokens formula,
acceptance 0 never helping, the batch-1 limit at acceptance 1, the speed-up shrinking with the
batch, memory taken by a draft model, and the engine running it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sim.engine.config import EngineConfig, SelfHostedFleetConfig, SpeculativeConfig
from sim.engine.simulate import simulate_fleet
from sim.perf import build_profile
from sim.perf.speculative import (
    SpeculativeProfile,
    default_acceptance,
    expected_tokens,
    speculative_profile,
)
from sim.workload import Workload


@functools.cache
def target():
    return build_profile("llama-3.1-70b", "h100-sxm", tp=4)


@functools.cache
def draft():
    return build_profile("llama-3.1-8b", "h100-sxm", tp=4)


def with_draft(acceptance: float, k: int = 4) -> SpeculativeProfile:
    return SpeculativeProfile(target(), k=k, acceptance=acceptance, draft=draft())


def with_mtp(acceptance: float, k: int = 1) -> SpeculativeProfile:
    return SpeculativeProfile(target(), k=k, acceptance=acceptance, draft_cost_frac=1 / 80)


def speedup(spec, n: int, ctx: int) -> float:
    return target().step_time_s(0, 0.0, n, n * ctx) / spec.step_time_s(0, 0.0, n, n * ctx)


def test_expected_tokens_per_step():
    assert expected_tokens(0.0, 4) == 1.0
    assert expected_tokens(1.0, 4) == 5.0
    assert expected_tokens(0.5, 3) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert expected_tokens(0.999999, 4) == pytest.approx(5.0, rel=1e-5)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 256),
    ctx=st.integers(1, 16_000),
    k=st.integers(1, 8),
    prefill=st.sampled_from([0, 512, 4096]),
    mtp=st.booleans(),
)
def test_acceptance_zero_is_never_faster(n, ctx, k, prefill, mtp):
    spec = with_mtp(0.0, k) if mtp else with_draft(0.0, k)
    pairs = prefill * (prefill + 1) / 2
    base = target().step_time_s(prefill, pairs, n, n * ctx)
    assert spec.step_time_s(prefill, pairs, n, n * ctx) >= base


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_acceptance_one_at_batch_one_approaches_k_plus_one_over_draft_cost(k):
    """At batch 1 the verification step is memory-bound, so verifying k + 1 tokens costs about
    one decode step, and every step advances k + 1 tokens: speed-up (k + 1) / (1 + r) with r the
    draft's cost over a target step. The gap is the k extra tokens' own cost (compute and the
    attention over the context), which this bounds at 5%."""
    ctx = 1000
    spec = with_draft(1.0, k)
    base = target().step_time_s(0, 0.0, 1, ctx)
    ratio = spec.draft_s(1, ctx) / base
    assert speedup(spec, 1, ctx) == pytest.approx((k + 1) / (1 + ratio), rel=0.05)
    assert speedup(spec, 1, ctx) <= (k + 1) / (1 + ratio)


@pytest.mark.parametrize("make", [with_draft, with_mtp])
def test_speedup_shrinks_as_the_batch_grows(make):
    spec = make(0.7)
    ups = [speedup(spec, n, 2000) for n in (1, 4, 16, 64, 256)]
    assert all(a >= b for a, b in zip(ups, ups[1:], strict=False))
    assert ups[0] > 1.3 and ups[-1] < ups[0] * 0.9


def test_a_draft_model_takes_memory_from_the_kv_cache_and_mtp_does_not():
    t, d = target(), draft()
    spec = with_draft(0.7)
    assert spec.kv_capacity_tokens < t.kv_capacity_tokens
    # What is left per GPU holds one target and one draft KV entry per token.
    per_t, per_d = t.kv_bytes_per_token / 4, d.kv_bytes_per_token / 4  # 8 KV heads over tp 4
    free = t.kv_capacity_tokens * per_t - d.weights_bytes_per_gpu
    assert spec.kv_capacity_tokens == pytest.approx(free / (per_t + per_d), abs=t.kv_block_tokens)
    assert with_mtp(0.7).kv_capacity_tokens == t.kv_capacity_tokens


def test_defaults_are_literature_figures_flagged_in_the_data():
    table = default_acceptance()
    assert set(table) == {"draft", "mtp"}
    for row in table.values():
        assert 0 < row["acceptance"] < 1 and row["source"] and row["published"]
        assert isinstance(row["from_memory"], bool)
    spec = speculative_profile(target(), SpeculativeConfig(method="mtp", k=1))
    assert spec.tokens_per_step == pytest.approx(1 + table["mtp"]["acceptance"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "draft"}, "draft_model: required"),
        ({"method": "mtp", "draft_model": "llama-3.1-8b"}, "draft_model: only for"),
        ({"method": "draft", "draft_model": "x", "draft_cost_frac": 0.1}, "draft_cost_frac"),
        ({"method": "mtp", "k": 0}, "k"),
        ({"method": "mtp", "acceptance": 1.0}, "acceptance"),
    ],
)
def test_bad_speculative_settings_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        SpeculativeConfig(**kwargs)


def test_exponential_service_refuses_speculation():
    with pytest.raises(ValidationError, match="speculative: needs service"):
        EngineConfig(service="exponential", service_mean_s=1.0, speculative={"method": "mtp"})


def test_the_engine_decodes_faster_at_low_load():
    """One request alone: its time after the first token shrinks by about the batch-1 speed-up."""

    def factory(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
        return build_profile("llama-3.1-70b", gpu, tp=tp, mem_util=mem_util)

    w = Workload(np.array([0.0]), np.array([1000]), np.array([400]))
    base = {"gpu": "h100-sxm", "servers": 1, "gpus_per_server": 4, "tp": 4, "gpu_price_usd": 1.0}
    spec = {"method": "draft", "draft_model": "llama-3.1-8b", "k": 4, "acceptance": 0.8}
    plain = SelfHostedFleetConfig(name="plain", **base)
    fast = SelfHostedFleetConfig(name="spec", **base, engine={"speculative": spec})
    times = {}
    for cfg in (plain, fast):
        r = simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(0))
        times[cfg.name] = r.finish_s[0] - r.first_token_s[0]
    expected = speedup(with_draft(0.8), 1, 1200)
    assert times["plain"] / times["spec"] == pytest.approx(expected, rel=0.03)


def test_the_streaming_path_runs_speculation_as_the_exact_path_does():
    from sim.engine.streaming import simulate_fleet_streaming

    def factory(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
        return build_profile("llama-3.1-70b", gpu, tp=tp, mem_util=mem_util)

    rng = np.random.default_rng(3)
    n = 200
    w = Workload(np.sort(rng.uniform(0, 60, n)), rng.integers(50, 2000, n), rng.integers(5, 300, n))
    cfg = SelfHostedFleetConfig(
        name="spec",
        gpu="h100-sxm",
        servers=1,
        gpus_per_server=4,
        tp=4,
        gpu_price_usd=1.0,
        engine={"speculative": {"method": "mtp", "k": 2}},
    )
    exact = simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(0))
    finish = np.full(n, np.nan)

    def keep(batch):
        finish[batch.request] = batch.finish_s

    simulate_fleet_streaming(
        cfg, [w], profile_factory=factory, rng=np.random.default_rng(0), on_batch=keep
    )
    assert np.allclose(finish, exact.finish_s, rtol=1e-9, equal_nan=True)
