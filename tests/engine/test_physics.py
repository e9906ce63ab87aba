"""The replica engine against hand-computed step sums (FakeProfile has a known formula)."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload, workload

from sim.engine import simulate_fleet
from sim.engine.config import EngineConfig, SelfHostedFleetConfig
from sim.engine.result import OK


def one_replica(**engine) -> SelfHostedFleetConfig:
    return SelfHostedFleetConfig(
        name="one",
        servers=1,
        gpus_per_server=1,
        tp=1,
        gpu_price_usd=10_000.0,
        engine=EngineConfig(**engine),
    )


@pytest.mark.parametrize("jump", [True, False])
def test_single_request_latency_is_prefill_plus_decode_steps(jump):
    prof = FakeProfile(roofline=False)
    p, o = 1000, 50
    r = simulate_fleet(
        one_replica(),
        workload([0.0], p, o),
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(0),
        jump=jump,
    )
    prefill = prof.step_time_s(prefill_tokens=p, prefill_attn_pairs=p * (p + 1) / 2)
    # Decode step j (0-based) reads the KV of p + j tokens; the prefill step gave the first token.
    decode = sum(prof.step_time_s(decode_seqs=1, decode_ctx_tokens=p + j) for j in range(o - 1))
    assert r.status[0] == OK
    assert r.first_token_s[0] == pytest.approx(prefill, rel=1e-12)
    assert r.finish_s[0] == pytest.approx(prefill + decode, rel=1e-9)


def test_chunked_prefill_splits_a_long_prompt_over_steps():
    prof = FakeProfile(roofline=False)
    p = 5000
    r = simulate_fleet(
        one_replica(max_batched_tokens=2048),
        workload([0.0], p, 1),
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(0),
    )
    # Chunks 2048, 2048, 904, each attending to everything before it.
    chunks = [(2048, 0), (2048, 2048), (904, 4096)]
    expected = sum(
        prof.step_time_s(prefill_tokens=c, prefill_attn_pairs=c * (past + (c + 1) / 2))
        for c, past in chunks
    )
    assert r.finish_s[0] == pytest.approx(expected, rel=1e-12)


def test_cached_prompt_tokens_skip_prefill_compute():
    prof = FakeProfile(roofline=False)
    w = workload([0.0], 1000, 1, cached=600)
    r = simulate_fleet(
        one_replica(), w, profile_factory=factory_for(prof), rng=np.random.default_rng(0)
    )
    c, past = 400, 600
    assert r.finish_s[0] == pytest.approx(
        prof.step_time_s(prefill_tokens=c, prefill_attn_pairs=c * (past + (c + 1) / 2)), rel=1e-12
    )


def test_kv_exhaustion_preempts_and_everything_still_finishes():
    # 4 requests of 1000 + 400 tokens cannot all hold their KV in 3000 tokens at once.
    prof = FakeProfile(kv_capacity_tokens=3000)
    w = workload([0.0, 0.0, 0.0, 0.0], 1000, 400)
    r = simulate_fleet(
        one_replica(), w, profile_factory=factory_for(prof), rng=np.random.default_rng(0)
    )
    assert (r.status == OK).all()
    # The same requests with room for all four KV caches: nothing is preempted or recomputed.
    roomy = simulate_fleet(
        one_replica(),
        w,
        profile_factory=factory_for(FakeProfile(kv_capacity_tokens=10_000)),
        rng=np.random.default_rng(0),
    )
    assert roomy.meta["preemptions"] == 0 and roomy.attempts.sum() == 0
    assert r.meta["preemptions"] >= 1
    # Recomputing a preempted prompt costs time: the last answer comes later than with room.
    assert np.nanmax(r.finish_s) > np.nanmax(roomy.finish_s)


def test_request_larger_than_kv_is_dropped_not_stuck():
    prof = FakeProfile(kv_capacity_tokens=1000)
    w = workload([0.0, 1.0], [2000, 100], [10, 10])
    r = simulate_fleet(
        one_replica(), w, profile_factory=factory_for(prof), rng=np.random.default_rng(0)
    )
    assert r.status.tolist() == [2, OK]  # 2 = DROPPED


def test_without_chunking_decodes_pause_during_a_prefill():
    prof = FakeProfile(roofline=False)
    w = workload([0.0, 0.05], [100, 3000], [200, 1])
    chunked = simulate_fleet(
        one_replica(chunked_prefill=True, max_batched_tokens=512),
        w,
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(0),
    )
    whole = simulate_fleet(
        one_replica(chunked_prefill=False),
        w,
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(0),
    )
    assert (chunked.status == OK).all() and (whole.status == OK).all()
    # Chunked, the second prompt is spread over several steps next to request 0's decodes, so
    # its TTFT is longer than with one whole-prompt step.
    assert whole.ttft_s[1] < chunked.ttft_s[1]
    # Whole-prompt prefill: request 0's decodes pause for exactly that one prefill step.
    alone = simulate_fleet(
        one_replica(chunked_prefill=False),
        workload([0.0], 100, 200),
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(0),
    )
    prefill_s = prof.step_time_s(prefill_tokens=3000, prefill_attn_pairs=3000 * 3001 / 2)
    assert whole.finish_s[0] - alone.finish_s[0] == pytest.approx(prefill_s, rel=1e-9)


def test_same_seed_same_arrays_and_different_seed_differs():
    prof = FakeProfile()
    w = poisson_workload(np.random.default_rng(3), 300, 8.0)
    from sim.engine.config import CloudFleetConfig, DistSpec

    cfg = CloudFleetConfig(
        name="c",
        tp=1,
        gpus_per_instance=1,
        price_usd_per_hour=2.0,
        initial_replicas=1,
        target=4,
        decision_interval_s=5,
        upscale_delay_s=5,
        downscale_delay_s=30,
        provision_s=DistSpec("normal", mean=20, std=5),
        term="spot",
        spot_preemptions_per_hour=30,
    )
    runs = [
        simulate_fleet(cfg, w, profile_factory=factory_for(prof), rng=np.random.default_rng(s))
        for s in (7, 7, 8)
    ]
    for name in ("start_s", "first_token_s", "finish_s", "status", "attempts", "cost_usd"):
        np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name))
    assert runs[0].timeseries.equals(runs[1].timeseries)
    assert not np.array_equal(runs[0].finish_s, runs[2].finish_s, equal_nan=True)
