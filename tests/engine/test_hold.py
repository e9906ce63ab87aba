"""Held jump ends (`Replica._hold`, `replica.release_held`): a decode jump whose end lies beyond
the next arrival is scheduled only once the last arrival before it is routed, so a jump an
arrival cuts leaves no dead event in SimPy's queue. Every result must be what the engine gives
when it schedules each jump end as the jump starts: the same requests, times, statuses, costs
and time series, with far fewer events.

These tests switch the engine's internals, so they run replica.py itself; the compiled build
gives the same results (tests/engine/test_native.py, bench/engine_fingerprint.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import simpy
from engine_helpers import (
    FakeProfile,
    assert_same_run,
    factory_for,
    lockstep_workload,
    poisson_workload,
    run_switched,
    workload,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_absorb import SETUPS as ABSORB_SETUPS

import sim.engine.fleet as fleet_mod
import sim.engine.replica as replica_mod
from sim.engine import native, simulate_fleet
from sim.engine.config import EngineConfig, SelfHostedFleetConfig
from sim.engine.fleet import GpuFleet
from sim.engine.replica import Due, release_held, schedule_at

# test_absorb's set-ups (self-hosted, KV-starved with a queue limit, autoscaled cloud), and
# without chunked prefill.
SETUPS = {
    **ABSORB_SETUPS,
    "own_unchunked": SelfHostedFleetConfig(
        name="own",
        servers=1,
        tp=4,
        gpu_price_usd=1e4,
        engine=EngineConfig(max_batch_seqs=32, max_batched_tokens=2048, chunked_prefill=False),
    ),
}
# Step times that are sums of powers of two (and affine, so a jump's steps sum exactly): events
# of different replicas often fall at the very same float time, which is where order matters.
DYADIC = FakeProfile(
    kv_capacity_tokens=6_000,
    overhead_s=2.0**-9,
    per_token_s=2.0**-16,
    per_pair_s=0.0,
    weights_s=2.0**-7,
    per_ctx_token_s=2.0**-20,
    per_seq_s=2.0**-14,
    roofline=False,
)


@pytest.fixture(autouse=True)
def python_replica():
    with native.use("python"):
        yield


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_held_jump_ends_change_nothing(name, monkeypatch):
    w = poisson_workload(np.random.default_rng(6), 3000, 25.0)
    profile = FakeProfile(kv_capacity_tokens=20_000)
    plain = run_switched(SETUPS[name], w, profile, monkeypatch, hold=False)
    held = run_switched(SETUPS[name], w, profile, monkeypatch, hold=True)
    assert_same_run(held.result, plain.result)
    assert held.events <= plain.events


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 120),
    name=st.sampled_from(sorted(SETUPS)),
    tick=st.sampled_from([2.0**-6, 2.0**-3, 0.25]),
)
def test_same_time_events_keep_their_order(seed, n, name, tick, monkeypatch):
    """Arrivals on a grid (many at the same instant), equal and dyadic lengths: replicas run
    in lockstep and their events coincide in time. Held jump ends, chained events
    (tests/engine/test_chain.py) and both together give what neither gives."""
    w = lockstep_workload(seed, n, tick)
    plain = run_switched(SETUPS[name], w, DYADIC, monkeypatch, hold=False, chain=False)
    for hold, chain in ((True, False), (False, True), (True, True)):
        run = run_switched(SETUPS[name], w, DYADIC, monkeypatch, hold=hold, chain=chain)
        assert_same_run(run.result, plain.result)


def test_the_conv_trace_replay_leaves_no_dead_event(monkeypatch):
    """On the self-hosted conv-trace set-up of bench/bench_engine.py (its first hour's first
    4,000 requests) every jump an arrival cuts was held: every engine event SimPy processes
    runs a callback. Counted as SimPy's steps minus the engine's callbacks run (the run's few
    other events: its limit, its end condition, a relay `land_at` may need)."""
    from bench.bench_engine import conv_trace, fleet_items
    from sim.perf import build_profile

    cfg, model = next(
        it for it in fleet_items("llama-3.1-70b", 4, 1, 8) if it[0].name == "self_hosted"
    )
    profile = build_profile(model, "h100-sxm", tp=4, precision="bf16", mem_util=cfg.engine.mem_util)
    full = conv_trace()
    w = workload(full.arrival_s[:4000], full.prompt_tokens[:4000], full.output_tokens[:4000])

    def idle_events(hold: bool) -> int:
        monkeypatch.setattr(GpuFleet, "hold_ok", hold)
        steps, calls = [0], [0]
        step = simpy.Environment.step

        def counting_step(env):
            steps[0] += 1
            step(env)

        def counted(callback):
            def run(ev):
                calls[0] += 1
                callback(ev)

            return run

        def counting(real_due):  # each module's own Due (the fleet's is from the build in use)
            return lambda callback: real_due(counted(callback))

        def counting_of(real_due_of):  # events made from a shared callback list
            return lambda callbacks: real_due_of([counted(cb) for cb in callbacks])

        monkeypatch.setattr(simpy.Environment, "step", counting_step)
        monkeypatch.setattr(replica_mod, "due_of", counting_of(replica_mod.due_of))
        monkeypatch.setattr(fleet_mod, "due_of", counting_of(fleet_mod.due_of))
        monkeypatch.setattr(fleet_mod, "Due", counting(fleet_mod.Due))
        simulate_fleet(cfg, w, profile_factory=factory_for(profile), rng=np.random.default_rng(1))
        monkeypatch.undo()
        return steps[0] - calls[0]

    assert idle_events(False) > 1000  # the ends of cut jumps
    assert idle_events(True) <= 3


def test_a_released_event_goes_before_a_same_time_event_scheduled_after_it():
    """The order rule itself: a replica's event scheduled while the arrival was routed, at the
    time of an event held before it, is scheduled again after the held one."""
    env = simpy.Environment()
    order: list[str] = []
    held = Due(lambda ev: order.append("held"))
    held.t = 5.0
    mine = Due(lambda ev: order.append("routed replica's"))
    schedule_at(env, mine, 1, 5.0)  # scheduled while the arrival was routed: before release
    rep = SimpleNamespace(_ev=mine, _ev_before=None)
    ahead = SimpleNamespace(held=[held], held_min=5.0)
    ties = release_held(ahead, env, 10.0, 0.0, rep)
    env.run()
    assert order == ["held", "routed replica's"]
    assert ahead.held == [] and ties == 1 and rep._ev is not mine and not mine.callbacks


def test_same_time_held_ends_go_in_the_order_they_were_held():
    env = simpy.Environment()
    order: list[int] = []
    evs = [Due(lambda ev, k=k: order.append(k)) for k in range(3)]
    for ev in evs:
        ev.t = 2.0
    ahead = SimpleNamespace(held=list(evs), held_min=2.0)
    rep = SimpleNamespace(_ev=evs[1], _ev_before=evs[1])  # joined a replica holding its end
    ties = release_held(ahead, env, 2.0, 0.0, rep)
    env.run()
    assert order == [0, 1, 2] and ties == 0


def test_an_event_scheduled_before_the_arrival_keeps_its_place():
    """Only an event the routed replica scheduled while the arrival was routed is moved: one it
    waited for before came first among same-time events scheduled after it, and still does."""
    env = simpy.Environment()
    order: list[str] = []
    earlier = Due(lambda ev: order.append("scheduled before the arrival"))
    schedule_at(env, earlier, 1, 5.0)
    held = Due(lambda ev: order.append("held"))
    held.t = 5.0
    rep = SimpleNamespace(_ev=earlier, _ev_before=earlier)  # not admissible: no cut, no new event
    ahead = SimpleNamespace(held=[held], held_min=5.0)
    ties = release_held(ahead, env, 10.0, 0.0, rep)
    env.run()
    assert order == ["scheduled before the arrival", "held"] and ties == 0


def test_held_ends_due_after_the_next_arrival_stay_held():
    env = simpy.Environment()
    later, cut = Due(lambda ev: None), Due(lambda ev: None)
    later.t, cut.t = 7.0, 3.0
    cut.callbacks.clear()  # an arrival cut that jump: it never enters SimPy's queue
    ahead = SimpleNamespace(held=[cut, later], held_min=3.0)
    release_held(ahead, env, 5.0, 0.0, None)
    assert ahead.held == [later] and env.peek() == float("inf")
    assert ahead.held_min == 7.0  # the bound the next arrivals test against
