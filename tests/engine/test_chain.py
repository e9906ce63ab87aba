"""Chained events (`Replica._chained`, `Replica._handle`): a replica's step or jump end that would
land strictly before every event in SimPy's queue is run by the callback that planned it, at its
own time, instead of as a SimPy event. Every result must be what the engine gives with one event
each: the same requests, times, statuses, costs, event counts and time series, with fewer events.
Same-time events with chaining and held ends together: test_hold.py's lockstep property test.

These tests switch the engine's internals, so they run replica.py itself; the compiled build
gives the same results (tests/engine/test_native.py, bench/engine_fingerprint.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import (
    FakeProfile,
    assert_same_run,
    poisson_workload,
    run_switched,
    workload,
)
from test_absorb import ENG, PREPLAN
from test_hold import SETUPS as HOLD_SETUPS

from sim.engine import native
from sim.engine.config import SelfHostedFleetConfig

SETUPS = {**HOLD_SETUPS, **PREPLAN}


@pytest.fixture(autouse=True)
def python_replica():
    with native.use("python"):
        yield


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_chained_events_change_nothing(name, monkeypatch):
    w = poisson_workload(np.random.default_rng(6), 3000, 25.0)
    profile = FakeProfile(kv_capacity_tokens=20_000)
    plain = run_switched(SETUPS[name], w, profile, monkeypatch, chain=False)
    chained = run_switched(SETUPS[name], w, profile, monkeypatch, chain=True)
    assert_same_run(chained.result, plain.result)
    assert chained.events < plain.events  # every set-up here allows chaining


@pytest.mark.parametrize("horizon_s", [None, 30.0])
@pytest.mark.parametrize("name", ["own", "own_starved", "cloud_inflight"])
def test_preemptions_and_a_horizon_under_chaining(name, horizon_s, monkeypatch):
    """A KV cache small enough that decoders are preempted (recorded at the chained event's own
    time, not SimPy's clock), with and without a horizon cutting the run."""
    w = poisson_workload(np.random.default_rng(11), 1500, 30.0)
    profile = FakeProfile(kv_capacity_tokens=3_000)
    plain = run_switched(SETUPS[name], w, profile, monkeypatch, chain=False, horizon_s=horizon_s)
    chained = run_switched(SETUPS[name], w, profile, monkeypatch, chain=True, horizon_s=horizon_s)
    assert plain.result.meta["event_counts"]["preemptions"] > 0
    assert_same_run(chained.result, plain.result)


def test_a_run_ended_by_a_chained_completion(monkeypatch):
    """The last request finishes in a chained event: the run ends at that event's time, as it
    did when the event was SimPy's (its costs and time series depend on the end)."""
    # One replica; from t = 10 s, so that the chain's times stay within twice SimPy's clock.
    w = workload(10.0 + np.arange(12) * 0.05, np.full(12, 300), np.full(12, 40) + np.arange(12))
    profile = FakeProfile(kv_capacity_tokens=20_000)
    cfg = SelfHostedFleetConfig(name="own", servers=1, tp=8, gpu_price_usd=1e4, engine=ENG)
    plain = run_switched(cfg, w, profile, monkeypatch, chain=False)
    chained = run_switched(cfg, w, profile, monkeypatch, chain=True)
    assert plain.ended == 0 and chained.ended == 1
    assert_same_run(chained.result, plain.result)


def test_no_chaining_where_something_else_reads_or_moves_a_replica(monkeypatch):
    """Not with a router that reads the queues (jsq), nor with spot kills, nor per-replica
    prefix caches: the same SimPy events with chaining on as off."""
    w = poisson_workload(np.random.default_rng(3), 800, 12.0)
    profile = FakeProfile(kv_capacity_tokens=20_000)
    for cfg in (
        replace(PREPLAN["own"], engine=replace(ENG, router="jsq")),
        replace(PREPLAN["cloud_inflight"], term="spot", spot_preemptions_per_hour=2.0),
    ):
        off = run_switched(cfg, w, profile, monkeypatch, chain=False)
        on = run_switched(cfg, w, profile, monkeypatch, chain=True)
        assert on.events == off.events, cfg.name
