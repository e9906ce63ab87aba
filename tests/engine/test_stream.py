"""Quantile sketches against exact percentiles, and streaming aggregates against the exact
per-request path (`replication_figures`, `build_timeseries`, `allocate_cost`)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import simulate_fleet
from sim.engine.accounting import allocate_cost
from sim.engine.config import ApiFleetConfig, EngineConfig, SelfHostedFleetConfig
from sim.engine.sketch import ALPHA, MIN_S, WindowSketches, counts_of, quantile
from sim.engine.stream import FleetAggregate, batch_from_result

values = st.lists(
    st.floats(min_value=MIN_S, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=400,
)


def _close(est: float, exact: float) -> bool:
    return abs(est - exact) <= ALPHA * abs(exact) + 1e-12


@settings(max_examples=200, deadline=None)
@given(values, st.floats(min_value=0.0, max_value=1.0))
def test_sketch_quantile_within_one_percent_of_np_percentile(xs, q):
    x = np.array(xs)
    assert _close(quantile(counts_of(x), q), float(np.percentile(x, q * 100)))


@settings(max_examples=50, deadline=None)
@given(values, values)
def test_sketches_merge_by_adding_counts(a, b):
    a, b = np.array(a), np.array(b)
    assert np.array_equal(counts_of(a) + counts_of(b), counts_of(np.concatenate([a, b])))


def test_heavy_tailed_latencies_and_zero():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.lognormal(-1, 2.0, 100_000), [0.0] * 10])
    counts = counts_of(x)
    for q in (0.0, 0.001, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = float(np.percentile(x, q * 100))
        assert abs(quantile(counts, q) - exact) <= ALPHA * exact + MIN_S
    assert math.isnan(quantile(np.zeros_like(counts), 0.5))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(1e-3, 1e3)), min_size=1, max_size=300))
def test_window_sketches_per_window(pairs):
    w = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    ws = WindowSketches()
    half = len(pairs) // 2
    ws.add(w[:half], v[:half])
    ws.add(w[half:], v[half:])
    got = ws.window_quantiles(7, (0.5, 0.99))
    for k in range(7):
        sel = v[w == k]
        if len(sel) == 0:
            assert np.isnan(got[k]).all()
            continue
        for j, q in enumerate((0.5, 0.99)):
            assert _close(got[k, j], float(np.percentile(sel, q * 100)))


def _own():
    eng = EngineConfig(max_batch_seqs=16, max_batched_tokens=1024, max_queue=10)
    return SelfHostedFleetConfig(name="own", servers=1, tp=8, gpu_price_usd=2e4, engine=eng)


API = ApiFleetConfig(
    name="api", price_usd_per_mtok_input=1.0, price_usd_per_mtok_output=2.0, rpm_limit=300
)


@pytest.mark.parametrize("cfg", [_own(), API], ids=["self_hosted", "api"])
@pytest.mark.parametrize("split", [1, 7])
def test_aggregate_matches_the_exact_path(cfg, split):
    from sim.summary import replication_figures

    w = poisson_workload(np.random.default_rng(2), 3000, 30.0)
    fr = simulate_fleet(
        cfg, w, profile_factory=factory_for(FakeProfile()), rng=np.random.default_rng(1)
    )
    targets = {"ttft_p99": 1.0, "e2e_p50": 8.0}
    agg = FleetAggregate(60.0, targets)
    batch = batch_from_result(fr)
    order = np.random.default_rng(3).permutation(len(batch))  # any order, any batching
    for part in np.array_split(order, split):
        agg.add(batch.take(part))
    exact = replication_figures(fr, SimpleNamespace(targets_s=targets))
    got = agg.figures(fr.total_cost_usd)
    assert set(got) == set(exact)
    assert (fr.status != 0).any() or cfg is API  # failures or drops are exercised
    for key, value in exact.items():
        if key.startswith(("ttft_", "tpot_", "e2e_")):
            assert _close(got[key], value), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key

    edges = fr.timeseries["window_start_s"].to_numpy()
    edges = np.append(edges, fr.timeseries["window_end_s"][-1])
    counts = agg.window_counts(edges)
    for col in ("arrivals", "completions", "failed"):
        assert np.array_equal(counts[col], fr.timeseries[col].to_numpy()), col
    np.testing.assert_allclose(agg.queue_len(edges), fr.timeseries["queue_len"], atol=1e-6)
    e2e = agg.window_latency_quantiles("e2e", len(edges) - 1)
    exact_e2e = fr.timeseries.select(["e2e_p50_s", "e2e_p90_s", "e2e_p99_s"]).to_numpy()
    assert np.array_equal(np.isnan(e2e), np.isnan(exact_e2e))
    ok = ~np.isnan(exact_e2e)
    assert (np.abs(e2e[ok] - exact_e2e[ok]) <= ALPHA * exact_e2e[ok] + 1e-12).all()

    window_cost = fr.timeseries["cost_usd"].to_numpy()
    rates = agg.cost_rates(edges, window_cost)
    tokens = fr.prompt_tokens + fr.output_tokens
    share = allocate_cost(edges, window_cost, fr.end_s, fr.status, tokens)
    np.testing.assert_allclose(rates.request_cost(batch), share, rtol=1e-9, atol=1e-15)
