"""The engine reads SimPy's clock from its events (`Due.t`) and from the replica's callers instead
of the `Environment.now` property on the hot path: every such time must be the clock itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload
from test_native import OWN, SETUPS

from sim.engine import native, simulate_fleet
from sim.engine.fleet import GpuFleet
from sim.engine.replica import Replica
from sim.perf import build_profile

CASES = {
    **SETUPS,
    "no_prefix_reuse": replace(OWN, engine=replace(OWN.engine, prefix_cache=False)),
    # prefill and decode pools with KV sent between them; a real profile (KV bytes per token)
    "disaggregated": replace(OWN, gpu="h100-sxm", servers=2, tp=1, prefill={}, decode={}),
}
REAL = {"disaggregated"}


@pytest.fixture
def checked_clock(monkeypatch):
    """Wrap the Python build's callbacks and `complete` to check the times they are given."""
    seen = {"events": 0, "completions": 0}

    def check(name):
        original = getattr(Replica, name)

        def wrapped(self, ev):
            assert ev.t == self.env.now, (name, ev.t, self.env.now)
            seen["events"] += 1
            return original(self, ev)

        monkeypatch.setattr(Replica, name, wrapped)

    for name in ("_on_wake", "_on_step_end", "_on_jump_end"):
        check(name)
    arrival = GpuFleet._on_arrival_timeout

    def on_arrival(self, ev):
        assert ev.t == self.env.now
        seen["events"] += 1
        return arrival(self, ev)

    complete = GpuFleet.complete

    def on_complete(self, i, now):
        assert now == self.env.now, (now, self.env.now)
        seen["completions"] += 1
        return complete(self, i, now)

    monkeypatch.setattr(GpuFleet, "_on_arrival_timeout", on_arrival)
    monkeypatch.setattr(GpuFleet, "complete", on_complete)
    # A chained event's completions are at its own time, ahead of the clock by design
    # (`Replica._chained`; tests/engine/test_chain.py checks those times): off here.
    monkeypatch.setattr(GpuFleet, "chain_ok", False)
    with native.use("python"):
        yield seen


@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n].engine.service == "physics"))
def test_event_times_and_completion_times_are_the_clock(checked_clock, name):
    w = poisson_workload(np.random.default_rng(2), 1500, 12.0)
    if name in REAL:
        profile = build_profile("llama-3.1-8b", "h100-sxm", tp=1, mem_util=0.9)
    else:
        profile = FakeProfile()
    r = simulate_fleet(
        CASES[name], w, profile_factory=factory_for(profile), rng=np.random.default_rng(3)
    )
    assert (r.status == 0).sum() > 0
    assert checked_clock["events"] > 1000 and checked_clock["completions"] > 0
