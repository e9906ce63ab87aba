"""The cloud autoscaler with known answers, read from the fleet's ordered event log."""

from __future__ import annotations

import math

import numpy as np
import simpy
from engine_helpers import FakeProfile, workload

from sim.engine.cloud import CloudFleet
from sim.engine.config import CloudFleetConfig, DistSpec, EngineConfig
from sim.engine.requests import RequestTable

INTERVAL, UP_DELAY, PROVISION, LOAD = 20.0, 60.0, 100.0, 30.0


def make(w, **kw):
    base = dict(
        name="c",
        tp=1,
        gpus_per_instance=1,
        price_usd_per_hour=3.6,
        min_replicas=1,
        max_replicas=4,
        initial_replicas=1,
        policy="inflight",
        target=4.0,
        decision_interval_s=INTERVAL,
        upscale_delay_s=UP_DELAY,
        downscale_delay_s=100_000.0,
        provision_s=DistSpec("const", value=PROVISION),
        engine=EngineConfig(service="exponential", service_mean_s=1.0),
    )
    base.update(kw)
    cfg = CloudFleetConfig(**base)
    env = simpy.Environment()
    fleet = CloudFleet(
        env,
        RequestTable(w),
        cfg,
        profile=FakeProfile(load_s=LOAD),
        rng=np.random.default_rng(0),
        window_s=60.0,
    )
    fleet.start_arrivals()  # the arrival path simulate_fleet uses
    return env, fleet


def step_load(t0: float, until: float):
    low = np.arange(0.5, t0, 10.0)  # one request per 10 s: one replica copes
    high = np.arange(t0, until, 0.05)  # 20 per second: the queue explodes
    return workload(np.concatenate([low, high]), 1, 1)


def test_step_in_load_scales_up_after_delay_plus_cold_start():
    t0 = 1005.0
    env, fleet = make(step_load(t0, 1400.0))
    env.run(until=1400.0)
    first_seen = math.ceil(t0 / INTERVAL) * INTERVAL  # 1020: the first decision after the step
    decided = first_seen + math.ceil(UP_DELAY / INTERVAL) * INTERVAL  # 1080
    ready = decided + PROVISION + LOAD  # 1210
    events = [(t, what) for t, what, _ in fleet.log]
    assert events[:2] == [(0.0, "launch"), (0.0, "warm")]
    assert events[2] == (decided, "scale_up 1->4")
    assert events[3:6] == [(decided, "launch")] * 3
    assert events[6:9] == [(ready, "warm")] * 3
    assert len(events) == 9


def test_scale_down_drains_after_downscale_delay_and_stops_billing():
    # One request per second needs one replica (in flight ~1 < target 4): from the first decision
    # at 20 s the fleet wants 1 of its 3; after the 120 s delay, at 140 s, two are drained.
    w = workload(np.arange(0.0, 300.0, 1.0), 1, 1)
    env, fleet = make(w, initial_replicas=3, downscale_delay_s=120.0, upscale_delay_s=3e7)
    env.run(until=600.0)
    downs = [(t, what) for t, what, _ in fleet.log if what.startswith("scale_down")]
    assert downs == [(140.0, "scale_down 3->1")]
    drained = [t for t, what, _ in fleet.log if what == "drain"]
    retired = [t for t, what, _ in fleet.log if what == "retire"]
    assert drained == [140.0, 140.0]
    # a draining replica finishes the request it holds (Exp(1 s)) before it retires
    assert len(retired) == 2 and all(140.0 <= t < 160.0 for t in retired)
    stopped = sorted(b[1] for b in fleet.bills.values() if b[1] is not None)
    assert stopped == sorted(retired)
    assert (fleet.table.status[:300] == 0).all()


def test_scale_from_zero_queues_until_the_first_replica_is_warm():
    w = workload([5.0, 6.0], 1, 1)
    env, fleet = make(w, min_replicas=0, initial_replicas=0, upscale_delay_s=0.0)
    env.run(until=400.0)
    t = fleet.table
    assert (t.status == 0).all()
    # Decision at 20 s sees 2 requests pending, launches 1; warm at 20 + 100 + 30 = 150 s.
    assert t.start_s.min() == 150.0


def test_spot_preemption_requeues_in_flight_work():
    w = workload(np.arange(0.0, 300.0, 0.5), 1, 1)
    env, fleet = make(
        w,
        term="spot",
        spot_preemptions_per_hour=60.0,
        spot_warning_s=5.0,
        fallback_on_demand=True,
        fallback_price_usd_per_hour=7.2,
        engine=EngineConfig(service="exponential", service_mean_s=2.0),
    )
    env.run(until=2000.0)
    kinds = [what for _, what, _ in fleet.log]
    assert "spot_warning" in kinds and "kill" in kinds
    t = fleet.table
    assert (t.status == 0).all()  # everything re-queued and eventually served
    assert any(b[2] == 7.2 / 3600 for b in fleet.bills.values())  # on-demand fallback billed


def test_rate_policy_sizes_the_fleet_to_the_last_minute_of_arrivals():
    # 3 requests/s (offset off the decision grid), target 1 request/s per replica, no delay.
    # The rate is arrivals in the last 60 s / 60 s, so it ramps up over the first minute:
    # t=20: 60 arrivals -> 1.0/s -> 1 replica; t=40: 120 -> 2; t=60: 180 -> 3 (then steady).
    w = workload(np.arange(0.1, 400.0, 1 / 3), 1, 1)
    env, fleet = make(
        w,
        policy="rate",
        target=1.0,
        upscale_delay_s=0.0,
        engine=EngineConfig(service="exponential", service_mean_s=0.1),
    )
    env.run(until=130.0)
    ups = [(t, what) for t, what, _ in fleet.log if what.startswith("scale_up")]
    assert ups == [(40.0, "scale_up 1->2"), (60.0, "scale_up 2->3")]


def test_rate_policy_does_not_scale_to_zero_with_work_outstanding():
    # One request at t=0, scale to zero, provisioning longer than the 60 s rate window: at 60 s
    # the rate is 0 but the request still waits for the starting replica. Cancelling that replica
    # would strand it for good (found by the invariant test; Autoscaler.wanted keeps one replica).
    w = workload([0.0], 1, 1)
    env, fleet = make(
        w,
        policy="rate",
        target=1.0,
        min_replicas=0,
        initial_replicas=0,
        upscale_delay_s=0.0,
        downscale_delay_s=0.0,
    )
    env.run(until=400.0)
    assert "cancel" not in [what for _, what, _ in fleet.log]
    # Launched at the first decision (20 s), warm at 20 + 100 + 30 = 150 s, served there.
    assert fleet.table.start_s[0] == 150.0
    assert fleet.table.status[0] == 0
