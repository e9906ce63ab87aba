"""Events counted where they happen (sim/engine/events.py), checked against what the engine did:
its ordered log, the per-request attempts, and set-ups with a known answer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload, workload

from sim.engine import simulate_fleet
from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    DistSpec,
    EngineConfig,
    SelfHostedFleetConfig,
)
from sim.engine.events import WINDOW_EVENTS

ENG = EngineConfig(max_batch_seqs=32, max_batched_tokens=2048)
CLOUD = CloudFleetConfig(
    name="cloud",
    tp=1,
    gpus_per_instance=1,
    price_usd_per_hour=3.6,
    min_replicas=1,
    max_replicas=4,
    initial_replicas=1,
    policy="inflight",
    target=4.0,
    decision_interval_s=20.0,
    upscale_delay_s=40.0,
    downscale_delay_s=120.0,
    provision_s=DistSpec("const", value=60.0),
    engine=ENG,
)
OWN = SelfHostedFleetConfig(name="own", servers=1, gpus_per_server=1, tp=1, gpu_price_usd=2e4, engine=ENG)  # fmt: skip


def _run(cfg, w, profile=None, **kw):
    return simulate_fleet(
        cfg,
        w,
        profile_factory=factory_for(profile or FakeProfile()),
        rng=np.random.default_rng(3),
        **kw,
    )


def _window_sums_match(fr):
    counts = fr.meta["event_counts"]
    for kind in WINDOW_EVENTS:
        if counts[kind] is not None:
            assert int(fr.timeseries[kind].sum()) == counts[kind], kind


def test_a_load_step_scales_up_and_every_launch_is_a_cold_start():
    low = np.arange(0.5, 600.0, 10.0)  # one replica copes
    high = np.arange(600.0, 1200.0, 0.05)  # 20 requests/s: the autoscaler must add replicas
    fr = _run(CLOUD, workload(np.concatenate([low, high]), 200, 100))
    ev = fr.meta["event_counts"]
    assert ev["scale_up"] >= 1
    assert ev["cold_starts"] == fr.meta["replicas_launched"] - CLOUD.initial_replicas
    assert ev["cold_starts"] >= 1
    scale_ups = [t for t, what, _ in fr.meta["events"] if what.startswith("scale_up")]
    assert ev["scale_up"] == len(scale_ups)
    # The first scale-up comes after the step, never before it.
    first = int(np.flatnonzero(fr.timeseries["scale_up"].to_numpy())[0])
    assert fr.timeseries["window_start_s"][first] >= 540.0
    assert ev["spot_kills"] == 0 and ev["throttled"] is None and ev["retries"] is None
    _window_sums_match(fr)


def test_scale_from_zero_makes_requests_wait_for_the_cold_start():
    cfg = replace(CLOUD, min_replicas=0, initial_replicas=0, upscale_delay_s=0.0)
    fr = _run(cfg, workload([5.0, 6.0, 7.0], 100, 10), FakeProfile(load_s=30.0))
    ev = fr.meta["event_counts"]
    assert ev["cold_starts"] == fr.meta["replicas_launched"] >= 1
    assert ev["cold_start_waits"] == 3
    # Decided at 20 s (the first decision), warm 60 s provisioning + 30 s loading later: the
    # request that arrived at 5 s waited 105 s.
    assert ev["cold_start_wait_s_p99"] == pytest.approx(np.percentile([105.0, 104.0, 103.0], 99))


def test_a_kv_starved_replica_preempts_and_every_preemption_is_recomputed():
    w = poisson_workload(np.random.default_rng(1), 300, 6.0, prompt_mean=400, output_mean=400)
    fr = _run(OWN, w, FakeProfile(kv_capacity_tokens=3000))
    ev = fr.meta["event_counts"]
    assert ev["preemptions"] > 0
    assert ev["recomputes"] == ev["preemptions"] == int(fr.attempts.sum())
    assert ev["recomputed_requests"] == int((fr.attempts > 0).sum())
    assert ev["recomputes_max_per_request"] == int(fr.attempts.max())
    assert ev["scale_up"] is None and ev["cold_starts"] is None and ev["spot_kills"] is None
    _window_sums_match(fr)


def test_spot_kills_are_counted_and_their_sequences_recomputed():
    cfg = replace(
        CLOUD,
        term="spot",
        spot_preemptions_per_hour=30.0,
        spot_warning_s=5.0,
        min_replicas=2,
        initial_replicas=2,
    )
    w = poisson_workload(np.random.default_rng(2), 3000, 4.0, output_mean=300)
    fr = _run(cfg, w)
    ev = fr.meta["event_counts"]
    warnings = [t for t, what, _ in fr.meta["events"] if what == "spot_warning"]
    assert ev["spot_kills"] == len(warnings) > 0
    # Evictions by kills are recomputes without being KV preemptions.
    assert ev["recomputes"] == int(fr.attempts.sum()) >= ev["preemptions"]
    _window_sums_match(fr)


def test_a_tiny_rate_limit_throttles_and_retries():
    api = ApiFleetConfig(
        name="api",
        price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=1.0,
        rpm_limit=30,
        max_retries=3,
    )
    w = poisson_workload(np.random.default_rng(4), 400, 2.0)
    fr = simulate_fleet(api, w, profile_factory=None, rng=np.random.default_rng(0))
    ev = fr.meta["event_counts"]
    assert ev["throttled"] > 0
    assert ev["throttled"] == int(fr.timeseries["throttled"].sum())
    # Every throttle is either retried or, after max_retries, the request's failure.
    failed = int((fr.status == 1).sum())
    assert ev["retries"] + failed == ev["throttled"]
    assert ev["retries"] == int((fr.attempts - 1).sum())
    assert ev["preemptions"] is None and ev["scale_up"] is None
    assert "utilisation" not in fr.meta


def test_utilisation_on_a_low_load_run():
    w = poisson_workload(np.random.default_rng(5), 200, 0.5)
    fr = _run(OWN, w)
    u = fr.meta["utilisation"]
    assert 0 < u["batch_occupancy"] <= u["busy_fraction"] <= 1
    assert 0 < u["kv_occupancy"] < 1
    assert 0 < u["output_tokens_per_s"] < u["capacity_output_tokens_per_s"]
    # Achieved rate: the completed requests' output over the run.
    ok = fr.status == 0
    assert u["output_tokens_per_s"] == pytest.approx(fr.output_tokens[ok].sum() / fr.meta["end_s"])
    # Busy fraction: the time series' per-window figure, weighted by window width.
    ts = fr.timeseries
    widths = (ts["window_end_s"] - ts["window_start_s"]).to_numpy()
    assert u["busy_fraction"] == pytest.approx(
        float((ts["busy_fraction"].to_numpy() * widths).sum() / widths.sum()), rel=1e-9
    )


def test_a_saturated_replica_is_fuller_than_an_idle_one():
    profile = FakeProfile()
    busy = _run(OWN, poisson_workload(np.random.default_rng(6), 2000, 40.0), profile)
    idle = _run(OWN, poisson_workload(np.random.default_rng(6), 200, 0.5), profile)
    for key in ("busy_fraction", "batch_occupancy", "kv_occupancy", "output_tokens_per_s"):
        assert busy.meta["utilisation"][key] > idle.meta["utilisation"][key], key


def test_tpot_percentiles_per_window():
    w = workload([0.0, 1.0], [10, 10], [11, 1])
    fr = _run(OWN, w)
    ts = fr.timeseries
    tpot = (fr.finish_s[0] - fr.first_token_s[0]) / 10
    assert ts["tpot_p99_s"][0] == pytest.approx(tpot)  # the one-token request has no TPOT
