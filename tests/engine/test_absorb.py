"""Arrivals absorbed between events (one SimPy event fewer each) change no result: the same
requests, times, statuses and costs as with one timeout per arrival.

These tests count and switch the engine's internals, so they run replica.py itself; the compiled
build gives the same results (tests/engine/test_native.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import simpy
from engine_helpers import FakeProfile, factory_for, poisson_workload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.engine.replica as replica_mod
from sim.engine import native, simulate_fleet
from sim.engine.config import CloudFleetConfig, EngineConfig, SelfHostedFleetConfig
from sim.engine.fleet import GpuFleet

ENG = EngineConfig(max_batch_seqs=32, max_batched_tokens=2048)
SETUPS = {
    "own": SelfHostedFleetConfig(name="own", servers=2, tp=2, gpu_price_usd=1e4, engine=ENG),
    "own_starved": SelfHostedFleetConfig(
        name="own", servers=1, tp=8, gpu_price_usd=1e4, engine=replace(ENG, max_queue=8)
    ),
    "cloud": CloudFleetConfig(
        name="cloud",
        price_usd_per_hour=5.0,
        gpus_per_instance=8,
        max_replicas=5,
        target=6,
        upscale_delay_s=10,
        downscale_delay_s=30,
        engine=replace(ENG, router="round_robin"),
    ),
}


@pytest.fixture(autouse=True)
def python_replica():
    with native.use("python"):
        yield


def _run(cfg, absorb: bool, monkeypatch, counter: list):
    start = GpuFleet.start_arrivals

    def patched(self):
        start(self)
        self._absorb = self._absorb and absorb
        self._arrivals.absorb = self._arrivals.absorb and absorb
        self._arrivals.hold = self._arrivals.hold and absorb  # held ends need absorbing

    monkeypatch.setattr(GpuFleet, "start_arrivals", patched)
    step = simpy.Environment.step

    def counting_step(env):  # SimPy's events
        counter.append(1)
        step(env)

    monkeypatch.setattr(simpy.Environment, "step", counting_step)
    w = poisson_workload(np.random.default_rng(6), 3000, 25.0)
    profile = FakeProfile(kv_capacity_tokens=20_000)
    return simulate_fleet(
        cfg, w, profile_factory=factory_for(profile), rng=np.random.default_rng(2)
    )


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_absorbed_arrivals_change_nothing(name, monkeypatch):
    plain_events: list = []
    absorbed_events: list = []
    plain = _run(SETUPS[name], False, monkeypatch, plain_events)
    monkeypatch.undo()
    absorbed = _run(SETUPS[name], True, monkeypatch, absorbed_events)
    for field in ("start_s", "first_token_s", "finish_s", "status", "attempts", "cost_usd"):
        np.testing.assert_array_equal(getattr(absorbed, field), getattr(plain, field), field)
    assert absorbed.timeseries.equals(plain.timeseries)
    assert len(absorbed_events) < len(plain_events)  # some arrivals were absorbed


@pytest.mark.parametrize("name", ["own", "own_starved"])
@pytest.mark.parametrize("horizon", [None, 60.0])
def test_merged_prefill_steps_change_no_request(name, horizon, monkeypatch):
    """A prefill step merged into the following jump (one event for both): every request's
    times and status are the same; GPU busy time is summed in another order (last bits)."""
    w = poisson_workload(np.random.default_rng(7), 2500, 25.0)
    factory = factory_for(FakeProfile(kv_capacity_tokens=20_000))

    def run():
        return simulate_fleet(
            SETUPS[name],
            w,
            profile_factory=factory,
            rng=np.random.default_rng(3),
            horizon_s=horizon,
        )

    merged = run()
    monkeypatch.setattr(GpuFleet, "merge_prefill", False, raising=False)
    plain = run()
    for field in ("start_s", "first_token_s", "finish_s", "status", "attempts"):
        np.testing.assert_array_equal(getattr(merged, field), getattr(plain, field), field)
    np.testing.assert_allclose(merged.cost_usd, plain.cost_usd, rtol=1e-9, atol=1e-15)
    for col in ("busy_fraction", "cost_usd", "queue_len"):
        np.testing.assert_allclose(merged.timeseries[col], plain.timeseries[col], rtol=1e-9)


PREPLAN = {
    **SETUPS,
    "own_round_robin": SelfHostedFleetConfig(
        name="own", servers=2, tp=2, gpu_price_usd=1e4, engine=replace(ENG, router="round_robin")
    ),
    "own_nochunk": SelfHostedFleetConfig(
        name="own", servers=2, tp=2, gpu_price_usd=1e4, engine=replace(ENG, chunked_prefill=False)
    ),
    # least_outstanding, and autoscaler decisions often enough to stop some planned cuts
    "cloud_inflight": replace(SETUPS["cloud"], engine=ENG, decision_interval_s=5),
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(PREPLAN)),
    rate=st.sampled_from([3.0, 12.0, 40.0]),
    seed=st.integers(0, 2**16),
    horizon=st.sampled_from([None, 45.0]),
)
def test_a_cut_planned_when_made_changes_no_request(name, rate, seed, horizon):
    """The step after a jump's cut planned when the cut is made (Replica._preplanned): every
    request's times, status and attempts are those of planning it at the cut's own event; the
    time series only differ where GPU busy time is summed in another order (last bits)."""
    w = poisson_workload(np.random.default_rng(seed), 600, rate)
    factory = factory_for(FakeProfile(kv_capacity_tokens=20_000))

    def run(preplan: bool):
        new_replica = GpuFleet.new_replica

        def patched(self):
            rep = new_replica(self)
            rep.preplan = rep.preplan and preplan
            return rep

        GpuFleet.new_replica = patched
        try:
            return simulate_fleet(
                PREPLAN[name], w, profile_factory=factory, rng=np.random.default_rng(seed + 1),
                horizon_s=horizon,
            )  # fmt: skip
        finally:
            GpuFleet.new_replica = new_replica

    planned, plain = run(True), run(False)
    for field in ("start_s", "first_token_s", "finish_s", "status", "attempts"):
        np.testing.assert_array_equal(getattr(planned, field), getattr(plain, field), field)
    np.testing.assert_allclose(planned.cost_usd, plain.cost_usd, rtol=1e-12, atol=1e-15)
    for col in ("busy_fraction", "cost_usd", "queue_len", "replicas"):
        np.testing.assert_allclose(planned.timeseries[col], plain.timeseries[col], rtol=1e-12)


def test_cuts_are_planned_ahead_where_allowed():
    """The planned cut is used (fewer events) on the set-ups that allow it, and never where a
    router reads the queue (jsq) or spot kills may land mid-step."""
    w = poisson_workload(np.random.default_rng(3), 1500, 12.0)
    factory = factory_for(FakeProfile(kv_capacity_tokens=20_000))
    seen = []
    preplanned = replica_mod.Replica._preplanned

    def counting(self, cut, next_arrival_s):
        done = preplanned(self, cut, next_arrival_s)
        seen.append(done)
        return done

    for cfg, allowed in (
        (PREPLAN["own"], True),
        (PREPLAN["cloud_inflight"], True),
        (replace(PREPLAN["own"], engine=replace(ENG, router="jsq")), False),
        (replace(PREPLAN["cloud_inflight"], term="spot", spot_preemptions_per_hour=2.0), False),
    ):
        seen.clear()
        replica_mod.Replica._preplanned = counting
        try:
            simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(2))
        finally:
            replica_mod.Replica._preplanned = preplanned
        assert (sum(seen) > 100) == allowed, (cfg.name, sum(seen))
