"""Properties every run must have, over random small workloads and fleets (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import simulate_fleet
from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    DistSpec,
    EngineConfig,
    SelfHostedFleetConfig,
)
from sim.engine.result import DROPPED, FAILED, OK, TIMESERIES_COLUMNS, UNFINISHED
from sim.workload import Workload

engines = st.builds(
    EngineConfig,
    max_batch_seqs=st.integers(1, 8),
    max_batched_tokens=st.integers(16, 4096),
    chunked_prefill=st.booleans(),
    router=st.sampled_from(["round_robin", "least_outstanding", "jsq"]),
    max_queue=st.one_of(st.none(), st.integers(0, 5)),
)

api_fleets = st.builds(
    ApiFleetConfig,
    name=st.just("api"),
    price_usd_per_mtok_input=st.floats(0, 10),
    price_usd_per_mtok_output=st.floats(0, 30),
    rpm_limit=st.one_of(st.none(), st.floats(1, 120)),
    tpm_limit=st.one_of(st.none(), st.floats(500, 50_000)),
    max_retries=st.integers(0, 4),
    batch=st.booleans(),
)


@st.composite
def _replica_bounds(draw):
    low = draw(st.integers(0, 1))
    high = draw(st.integers(max(low, 1), 3))
    return {"min_replicas": low, "max_replicas": high, "initial_replicas": draw(st.integers(low, min(high, 2)))}  # fmt: skip


_CLOUD = dict(
    name=st.just("cloud"),
    tp=st.sampled_from([1, 2]),
    gpus_per_instance=st.sampled_from([1, 8]),
    price_usd_per_hour=st.floats(0.5, 100),
    policy=st.sampled_from(["inflight", "queue", "rate"]),
    target=st.floats(0.5, 8),
    decision_interval_s=st.floats(1, 30),
    upscale_delay_s=st.floats(0, 60),
    downscale_delay_s=st.floats(0, 120),
    provision_s=st.just(DistSpec("uniform", low=5.0, high=60.0)),
    billing=st.sampled_from(["per_second", "per_hour"]),
    term=st.sampled_from(["on_demand", "spot"]),
    spot_preemptions_per_hour=st.floats(0, 100),
    spot_warning_s=st.floats(0, 30),
    engine=engines,
)

cloud_fleets = _replica_bounds().flatmap(
    lambda bounds: st.builds(
        CloudFleetConfig, **{k: st.just(v) for k, v in bounds.items()}, **_CLOUD
    )
)

self_hosted_fleets = st.builds(
    SelfHostedFleetConfig,
    name=st.just("dc"),
    servers=st.integers(1, 2),
    gpus_per_server=st.sampled_from([1, 2]),
    tp=st.just(1),
    gpu_price_usd=st.floats(1, 40_000),
    overflow=st.one_of(st.none(), api_fleets),
    overflow_queue_threshold=st.integers(0, 3),
    engine=engines,
)


@st.composite
def workloads(draw):
    n = draw(st.integers(0, 25))
    gaps = draw(st.lists(st.floats(0, 20), min_size=n, max_size=n))
    prompt = draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n))
    output = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    cached = [draw(st.integers(0, p)) for p in prompt]
    return Workload(
        np.cumsum(gaps),
        np.array(prompt, dtype=np.int64),
        np.array(output, dtype=np.int64),
        np.array(cached, dtype=np.int64),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=st.one_of(api_fleets, cloud_fleets, self_hosted_fleets),
    w=workloads(),
    horizon=st.one_of(st.none(), st.floats(10, 2000)),
    kv=st.integers(2000, 20_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_request_accounted_and_costs_consistent(cfg, w, horizon, kv, seed):
    prof = FakeProfile(kv_capacity_tokens=kv)
    r = simulate_fleet(
        cfg,
        w,
        profile_factory=factory_for(prof),
        rng=np.random.default_rng(seed),
        window_s=30.0,
        horizon_s=horizon,
    )
    n = len(w)
    status = r.status
    counts = {s: int((status == s).sum()) for s in (OK, FAILED, DROPPED, UNFINISHED)}
    assert sum(counts.values()) == n
    ts = r.timeseries
    assert ts.columns == list(TIMESERIES_COLUMNS)
    end = r.meta["end_s"]
    assert ts["window_end_s"][-1] == pytest.approx(end)
    assert ts["completions"].sum() == counts[OK]
    assert ts["failed"].sum() == counts[FAILED] + counts[DROPPED]
    assert ts["arrivals"].sum() == int((w.arrival_s <= end).sum())
    if horizon is None:
        # Nothing here overloads a fleet for 6 h: every request settles.
        assert counts[UNFINISHED] == 0
    ok = status == OK
    assert (r.first_token_s[ok] >= r.start_s[ok]).all()
    assert (r.start_s[ok] >= r.arrival_s[ok]).all()
    assert (r.finish_s[ok] >= r.first_token_s[ok]).all()
    assert np.isnan(r.finish_s[~ok]).all()
    cum = ts["cumulative_cost_usd"].to_numpy()
    assert (np.diff(cum) >= -1e-9).all() and (ts["cost_usd"].to_numpy() >= 0).all()
    if n:  # with no request there is nobody to carry a share (a replica's minimum bill remains)
        assert r.cost_usd.sum() == pytest.approx(r.total_cost_usd, rel=1e-9, abs=1e-9)
    assert r.total_cost_usd == pytest.approx(
        sum(r.cost_breakdown_usd.values()), rel=1e-9, abs=1e-12
    )
    assert ((ts["busy_fraction"] >= 0) & (ts["busy_fraction"] <= 1)).all()


def test_replica_load_counts_running_and_waiting(monkeypatch):
    """`Replica.load`, which the least-outstanding router reads, is len(running) + len(waiting)
    at every routing decision, through preemptions, drains, spot kills and retirements."""
    from dataclasses import replace

    from engine_helpers import poisson_workload

    from sim.engine import native
    from sim.engine import replica as replica_mod
    from sim.engine.fleet import GpuFleet

    checked = []
    route, arrival_route = GpuFleet.route, replica_mod.Arrivals._route

    def check(fleet):
        for rep in fleet.replicas:
            if rep.state != "dead":
                assert rep.load == len(rep.running) + len(rep.waiting)
        checked.append(1)

    def checking_route(self, i, now=None, next_arrival_s=float("-inf"), clock=-1.0):
        check(self)
        return route(self, i, now, next_arrival_s, clock)

    def checking_arrival_route(self, j, now, t_next, clock):  # an arrival's, least-outstanding
        check(self.fleet)
        return arrival_route(self, j, now, t_next, clock)

    monkeypatch.setattr(GpuFleet, "route", checking_route)
    monkeypatch.setattr(replica_mod.Arrivals, "_route", checking_arrival_route)
    monkeypatch.setattr(native, "_build", "python")  # replica.py itself, patched above
    cloud = CloudFleetConfig(
        name="cloud",
        price_usd_per_hour=10.0,
        gpus_per_instance=8,
        initial_replicas=1,
        max_replicas=6,
        target=8,
        upscale_delay_s=20,
        downscale_delay_s=30,
        term="spot",
        spot_preemptions_per_hour=30.0,
        fallback_on_demand=True,
        fallback_price_usd_per_hour=20.0,
        engine=EngineConfig(max_batch_seqs=32, max_batched_tokens=2048),
    )
    starved = factory_for(FakeProfile(kv_capacity_tokens=6000))
    w = poisson_workload(np.random.default_rng(4), 3000, 8.0)
    for cfg in (cloud, replace(cloud, term="on_demand", spot_preemptions_per_hour=0.0)):
        r = simulate_fleet(cfg, w, profile_factory=starved, rng=np.random.default_rng(1))
        assert (r.attempts > 1).any()  # preemptions or kills happened
    assert len(checked) > 6000
