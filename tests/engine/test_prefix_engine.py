"""Per-replica prefix caches in the engine (engine.prefix_cache), with known answers: a repeated
prefix, an LRU smaller than the working set computed by hand, and the Mooncake conversation
trace against its infinite shared-cache count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.engine import simulate_fleet
from sim.engine.config import EngineConfig, SelfHostedFleetConfig
from sim.engine.result import OK
from sim.traffic.conversations import conversations
from sim.traffic.lengths import LognormalLengths
from sim.traffic.loaders import load_trace
from sim.workload import Workload
from tests.engine.engine_helpers import FakeProfile, factory_for

MOONCAKE = Path(__file__).resolve().parents[1] / "data/mooncake/conversation_trace_head300.jsonl"


def _fleet(replicas: int = 1, **engine) -> SelfHostedFleetConfig:
    return SelfHostedFleetConfig(
        name="own",
        servers=1,
        gpus_per_server=replicas,
        tp=1,
        gpu_price_usd=1000.0,
        engine=EngineConfig(**engine),
    )


def _run(cfg, w, kv=10_000_000, seed=0):
    profile = FakeProfile(kv_capacity_tokens=kv)
    return simulate_fleet(cfg, w, profile_factory=factory_for(profile), rng=np.random.default_rng(seed))  # fmt: skip


def _with_ids(arrival_s, prompt, output, rows, block=16) -> Workload:
    """A workload whose request i has block hash ids rows[i]."""
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    values = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
    n = len(rows)
    return Workload(
        np.asarray(arrival_s, dtype=np.float64),
        np.broadcast_to(np.asarray(prompt, dtype=np.int64), (n,)).copy(),
        np.broadcast_to(np.asarray(output, dtype=np.int64), (n,)).copy(),
        meta={"hash_ids": (offsets, values), "hash_block_tokens": block},
    )


@pytest.mark.parametrize("n", [2, 5, 20])
def test_a_repeated_prefix_hits_all_but_the_first_time(n):
    # Every request: the same 64-block prefix (1,024 tokens), then 8 blocks of its own.
    prefix = list(range(64))
    rows = [prefix + [1000 + 10 * i + k for k in range(8)] for i in range(n)]
    w = _with_ids(np.arange(n) * 5.0, 72 * 16, 20, rows)
    pc = _run(_fleet(prefix_cache=True), w).meta["prefix_cache"]
    # (n - 1) of the n passes over the prefix's blocks hit: (n - 1)/n of prefix blocks.
    assert pc["hit_tokens"] == (n - 1) * 64 * 16
    assert pc["hit_tokens"] / (n * 64 * 16) == pytest.approx((n - 1) / n)
    assert pc["hit_rate_requests"] == pytest.approx((n - 1) / n)
    assert pc["evicted_blocks"] == 0 and pc["gpu_s_saved"] > 0


def test_an_lru_smaller_than_the_working_set_by_hand():
    # Prefixes A, B, C of 4 blocks (64 tokens, the whole prompt); one output token, so each
    # request finishes in its prefill step, long before the next arrives. KV of 128 tokens:
    # room for two idle prefixes while nothing runs, one while a 64-token request runs.
    a, b, c = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]
    order = [a, b, a, c, a, b]
    w = _with_ids(np.arange(6) * 10.0, 64, 1, order)
    r = _run(_fleet(prefix_cache=True), w, kv=128)
    assert (r.status == OK).all()
    pc = r.meta["prefix_cache"]
    # A miss; B miss; A hit; C miss, and at its end B (least recently used) is evicted to fit
    # C beside A; A hit; B miss, and C is evicted. Hits never cover the last prompt token.
    assert pc["hit_requests"] == 2 and pc["hit_rate_requests"] == pytest.approx(2 / 6)
    assert pc["hit_tokens"] == 2 * 63
    assert pc["hit_rate_tokens"] == pytest.approx(126 / 384)
    assert pc["evicted_blocks"] == 8


def test_cyclic_reuse_beyond_the_cache_never_hits():
    # Three prefixes in a cycle through an LRU that holds two: the classic LRU thrash.
    rows = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]] * 3
    w = _with_ids(np.arange(9) * 10.0, 64, 1, rows)
    pc = _run(_fleet(prefix_cache=True), w, kv=128).meta["prefix_cache"]
    # From the third request on, each one's end evicts the least recently used prefix.
    assert pc["hit_tokens"] == 0 and pc["evicted_blocks"] == 7 * 4


@pytest.mark.parametrize("router", ["least_outstanding", "prefix_affinity"])
def test_mooncake_conversations_with_a_cache_that_never_evicts_match_the_infinite_count(router):
    w = load_trace(MOONCAKE)
    assert w.cached_prompt_tokens.sum() > 0
    r = _run(_fleet(prefix_cache=True, router=router), w)
    assert (r.status == OK).all()
    pc = r.meta["prefix_cache"]
    assert pc["evicted_blocks"] == 0
    assert pc["hit_tokens"] == int(w.cached_prompt_tokens.sum())
    assert pc["hit_rate_tokens"] == w.cached_prompt_tokens.sum() / w.prompt_tokens.sum()
    # And the engine's TTFTs are those of the shared-count path (the same cached tokens).
    shared = _run(_fleet(), w)
    np.testing.assert_array_equal(r.first_token_s, shared.first_token_s)


def test_generated_conversations_on_one_replica_reach_their_infinite_count():
    rng = np.random.default_rng(4)
    const = lambda v: LognormalLengths(v, 0.0, v)  # noqa: E731
    w = conversations(
        0.05, 600, rng,
        turns=const(4), first_prompt=LognormalLengths(800, 0.5, 4000),
        user_tokens=LognormalLengths(150, 0.5, 1000), output=LognormalLengths(200, 0.5, 800),
        think_time_s=60.0, system_tokens=1000,
    )  # fmt: skip
    r = _run(_fleet(prefix_cache=True), w)
    pc = r.meta["prefix_cache"]
    infinite = int(w.cached_prompt_tokens.sum())
    # The infinite count knows a turn's output blocks at its arrival; the replica caches them
    # when the turn finishes, so a next turn that arrives sooner (a short exponential think
    # time) hits only the prompt part: at most the infinite count, and close to it.
    assert 0.98 * infinite <= pc["hit_tokens"] <= infinite
    assert pc["hit_rate_tokens"] > 0.5  # later turns repeat almost all of their prompt


def test_affinity_routing_keeps_conversations_where_their_context_is():
    rng = np.random.default_rng(5)
    w = conversations(
        0.2, 900, rng,
        turns=LognormalLengths(6, 0.0, 6), first_prompt=LognormalLengths(2000, 0.3, 8000),
        user_tokens=LognormalLengths(200, 0.3, 1000), output=LognormalLengths(200, 0.3, 800),
        think_time_s=30.0,
    )  # fmt: skip
    spread = _run(_fleet(4, prefix_cache=True, router="round_robin"), w).meta["prefix_cache"]
    sticky = _run(_fleet(4, prefix_cache=True, router="prefix_affinity"), w).meta["prefix_cache"]
    assert sticky["hit_rate_tokens"] > spread["hit_rate_tokens"] + 0.2


def test_prefix_cache_false_prefills_every_token_and_unset_keeps_the_trace_count():
    w = load_trace(MOONCAKE)
    off = _run(_fleet(prefix_cache=False), w)
    unset = _run(_fleet(), w)
    assert off.meta["prefix_cache"]["mode"] == "off" and unset.meta["prefix_cache"]["mode"] == "trace"  # fmt: skip
    assert off.meta["prefix_cache"]["hit_tokens"] == 0
    # Unset: the trace's infinite shared count, as the engine used it.
    assert unset.meta["prefix_cache"]["hit_tokens"] == int(w.cached_prompt_tokens.sum())
    # Batches differ, so single requests may go either way; the prefill work does not.
    assert off.ttft_s.sum() > unset.ttft_s.sum()
    assert off.meta["preemptions"] == unset.meta["preemptions"] == 0


def test_prefix_cache_needs_prefix_identity():
    w = Workload(np.array([0.0]), np.array([10]), np.array([5]))
    with pytest.raises(ValueError, match="prefix identity"):
        _run(_fleet(prefix_cache=True), w)


def test_the_streaming_path_gives_the_exact_path_s_caches_on_the_mooncake_sample():
    """Per-replica caches on the streaming path (slots bound to their requests' keys), on the
    real Mooncake sample in 4 pieces: the same cache figures as the exact path."""
    from sim.engine.streaming import simulate_fleet_streaming
    from sim.traffic.config import _slice

    w = load_trace(MOONCAKE)
    cfg, factory = _fleet(prefix_cache=True), factory_for(FakeProfile())
    exact = simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(0))
    bounds = np.linspace(0, len(w), 5).astype(int).tolist()
    got = simulate_fleet_streaming(
        cfg, [_slice(w, a, b) for a, b in zip(bounds, bounds[1:], strict=False)],
        profile_factory=factory, rng=np.random.default_rng(0), capacity=32,
    )  # fmt: skip
    assert exact.meta["prefix_cache"]["hit_tokens"] > 0
    assert got.meta["prefix_cache"] == exact.meta["prefix_cache"]


def test_affinity_needs_the_cache():
    with pytest.raises(ValueError, match="prefix_cache = true"):
        EngineConfig(router="prefix_affinity")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 25),
    kv=st.integers(300, 3000),
    replicas=st.integers(1, 3),
    router=st.sampled_from(["least_outstanding", "round_robin", "prefix_affinity"]),
    seed=st.integers(0, 2**16),
)
# A request preempted and readmitted sat in the completion heap twice with the same finish step;
# the cached replica's completion took it off twice (KeyError) until Dec 2 2026.
@example(n=24, kv=300, replicas=1, router="least_outstanding", seed=8599)
def test_hit_rates_are_fractions_and_evictions_non_negative(n, kv, replicas, router, seed):
    rng = np.random.default_rng(seed)
    # Requests drawn from a few chains, cut at random lengths: shared prefixes of all sizes.
    chains = [[100 * c + k for k in range(12)] for c in range(3)]
    rows = [chains[rng.integers(3)][: rng.integers(1, 13)] for _ in range(n)]
    prompt = np.array([16 * len(r) - int(rng.integers(0, 16)) for r in rows])
    w = _with_ids(np.sort(rng.uniform(0, 5, n)), prompt, rng.integers(1, 40, n), rows)
    r = _run(_fleet(replicas, prefix_cache=True, router=router), w, kv=kv, seed=seed)
    pc = r.meta["prefix_cache"]
    assert 0.0 <= pc["hit_rate_tokens"] <= 1.0
    assert 0.0 <= pc["hit_rate_requests"] <= 1.0
    assert pc["evicted_blocks"] >= 0 and pc["gpu_s_saved"] >= 0
    assert pc["hit_tokens"] <= pc["prompt_tokens"]
    assert (r.status != 3).all()  # every request settles


@pytest.mark.parametrize(
    ("scenario", "override", "field"),
    [
        ("peak", "fleet.own-2x8xh100.engine.prefix_cache=true", "fleet.2.engine.prefix_cache"),
        ("peak", 'fleet.api-together.prompt_cache="provider"', "fleet.0.prompt_cache"),
        (
            "agent_conversations",
            "fleet.own-cached.engine.block_tokens=24",
            "fleet.0.engine.block_tokens",
        ),  # fmt: skip
    ],
)
def test_scenarios_without_prefix_identity_or_with_clashing_blocks_fail_at_load(scenario, override, field):  # fmt: skip
    from sim.errors import InputError
    from sim.scenario import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / f"{scenario}.toml"
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        load_scenario(path, [override])


def test_the_streaming_path_prefills_everything_with_prefix_cache_false():
    from sim.engine.streaming import simulate_fleet_streaming

    w = load_trace(MOONCAKE)
    exact = _run(_fleet(prefix_cache=False), w)
    batches = []
    simulate_fleet_streaming(
        _fleet(prefix_cache=False), [w], profile_factory=factory_for(FakeProfile(kv_capacity_tokens=10_000_000)),
        rng=np.random.default_rng(0), on_batch=batches.append,
    )  # fmt: skip
    request = np.concatenate([b.request for b in batches])
    first = np.concatenate([b.first_token_s for b in batches])
    np.testing.assert_array_equal(first[np.argsort(request)], exact.first_token_s)
