"""Arrivals absorbed between events (one SimPy event fewer each) change no result: the same
requests, times, statuses and costs as with one timeout per arrival."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload

import sim.engine.fleet as fleet_mod
from sim.engine import simulate_fleet
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


def _run(cfg, absorb: bool, monkeypatch, counter: list):
    start = GpuFleet.start_arrivals

    def patched(self):
        start(self)
        self._absorb = self._absorb and absorb

    monkeypatch.setattr(GpuFleet, "start_arrivals", patched)
    real_due = fleet_mod.Due

    def counting_due(callback):
        counter.append(1)
        return real_due(callback)

    monkeypatch.setattr(fleet_mod, "Due", counting_due)
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
