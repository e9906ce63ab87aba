"""Commitment billing and the one cost horizon: known answers on the pure functions, then every
fleet kind through the real `simulate_fleet`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sim.engine import billing, simulate_fleet
from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    DistSpec,
    EngineConfig,
    SelfHostedFleetConfig,
)
from sim.engine.self_hosted import YEAR_S, amortised_usd_per_year, capex_usd
from sim.workload import Workload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_helpers import FakeProfile, factory_for  # noqa: E402


def test_terms_are_read_generically():
    for term in ("reserved_1y", "reserved_3y_all_upfront", "committed_1y", "commitment_3y"):
        assert billing.is_commitment(term)
        assert billing.is_known_term(term)
    for term in ("on_demand", "spot", "low_priority"):
        assert not billing.is_commitment(term)
        assert billing.is_known_term(term)
    assert not billing.is_known_term("whenever")
    assert billing.term_years("reserved_3y_partial_upfront") == 3.0
    assert billing.term_years("commitment_1y") == 1.0
    assert billing.term_years("on_demand") is None


def test_upfront_fee_is_spread_over_every_hour_of_the_term():
    # 1 y = 8766 h: an upfront fee of 8766 USD adds exactly 1 USD per hour.
    assert billing.amortised_usd_per_hour(2.5, 8766.0, 1.0) == pytest.approx(3.5)
    assert billing.amortised_usd_per_hour(0.0, 3 * 8766.0, 3.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        billing.amortised_usd_per_hour(1.0, 0.0, 0.0)


def test_excess_overlap_counts_replica_seconds_beyond_the_base():
    edges = np.array([0.0, 100.0, 200.0])
    # Three replicas: [0, 200), [50, 150), [120, 180). Beyond 1 replica: [50, 150) + [120, 180)
    # while both overlap the first; beyond 2: [120, 150).
    start = np.array([0.0, 50.0, 120.0])
    stop = np.array([200.0, 150.0, 180.0])
    assert billing.excess_overlap(edges, start, stop, 1).tolist() == pytest.approx([50, 110])
    assert billing.excess_overlap(edges, start, stop, 2).tolist() == pytest.approx([0, 30])
    assert billing.excess_overlap(edges, start, stop, 3).tolist() == pytest.approx([0, 0])
    assert billing.excess_overlap(edges, start, stop, 0).sum() == pytest.approx(200 + 100 + 60)


def test_commitment_is_billed_for_the_whole_span_used_or_not():
    edges = np.array([0.0, 1800.0, 3600.0, 5400.0])  # the run drained 30 min past the span
    parts = billing.commitment_parts(
        edges,
        committed_replicas=2,
        usd_per_replica_hour=10.0,
        start_s=np.array([0.0, 1800.0]),  # one replica for 90 min, one burst of 30 min
        stop_s=np.array([5400.0, 3600.0]),
        burst_usd_per_replica_hour=30.0,
    )
    # 2 committed replicas x 1 h x 10 USD, although only one ran in the first half hour; the
    # drain's half hour after the span costs no commitment.
    parts, _ = billing.apply_cost_horizon(parts, edges, 3600.0)
    assert parts["commitment"].tolist() == pytest.approx([10.0, 10.0, 0.0])
    # Never more than 2 replicas at once: nothing is billed on demand.
    assert parts["burst"].sum() == 0.0
    parts = billing.commitment_parts(
        edges,
        committed_replicas=1,
        usd_per_replica_hour=10.0,
        start_s=np.array([0.0, 1800.0]),
        stop_s=np.array([5400.0, 3600.0]),
        burst_usd_per_replica_hour=30.0,
    )
    parts, _ = billing.apply_cost_horizon(parts, edges, 3600.0)
    assert parts["commitment"].sum() == pytest.approx(10.0)
    assert parts["burst"].tolist() == pytest.approx([0.0, 15.0, 0.0])  # 30 min at 30 USD/h
    with pytest.raises(ValueError, match="fallback_price_usd_per_hour"):
        billing.commitment_parts(
            edges,
            committed_replicas=1,
            usd_per_replica_hour=10.0,
            start_s=np.array([0.0, 1800.0]),
            stop_s=np.array([5400.0, 3600.0]),
            burst_usd_per_replica_hour=None,
        )


def test_cost_horizon_cuts_fixed_parts_and_reports_the_drain():
    edges = np.array([0.0, 60.0, 120.0, 150.0])
    parts = {"capex": np.array([6.0, 6.0, 3.0]), "power": np.array([1.0, 2.0, 4.0])}
    out, overrun = billing.apply_cost_horizon(parts, edges, 90.0)
    assert out["capex"].tolist() == pytest.approx([6.0, 3.0, 0.0])
    assert out["power"].tolist() == [1.0, 2.0, 4.0]  # variable: kept whole
    assert overrun.tolist() == pytest.approx([0.0, 1.0, 4.0])


# -- every fleet kind through simulate_fleet -------------------------------------------------

SPAN_S = 600.0


def _burst_workload() -> Workload:
    """Work that cannot finish within the span: 40 long requests in the last minute."""
    arrivals = np.linspace(SPAN_S - 60.0, SPAN_S, 40)
    return Workload(
        arrivals, np.full(40, 2000, dtype=np.int64), np.full(40, 4000, dtype=np.int64), name="t"
    )


def _run(cfg, w):
    return simulate_fleet(
        cfg, w, profile_factory=factory_for(FakeProfile()), rng=np.random.default_rng(1)
    )


def test_self_hosted_fixed_costs_stop_at_the_span():
    cfg = SelfHostedFleetConfig(
        name="own", servers=1, gpus_per_server=1, tp=1, gpu_price_usd=20_000.0
    )
    r = _run(cfg, _burst_workload())
    assert r.meta["overrun_s"] > 60.0  # the batch drains well after the last arrival
    assert r.meta["span_s"] == SPAN_S
    capex_per_s = amortised_usd_per_year(capex_usd(cfg), 0.1, 4.0, 0.0) / YEAR_S
    assert r.cost_breakdown_usd["capex"] == pytest.approx(capex_per_s * SPAN_S, rel=1e-9)
    colo_per_s = cfg.colo_usd_per_month / (YEAR_S / 12)
    assert r.cost_breakdown_usd["colo"] == pytest.approx(colo_per_s * SPAN_S, rel=1e-9)
    # The drain's power is paid for and reported on its own.
    assert 0 < r.meta["overrun_variable_usd"] <= r.cost_breakdown_usd["power"]
    assert r.total_cost_usd == pytest.approx(sum(r.cost_breakdown_usd.values()))


def test_self_hosted_fleet_that_settles_early_still_pays_the_span():
    cfg = SelfHostedFleetConfig(
        name="own", servers=1, gpus_per_server=1, tp=1, gpu_price_usd=20_000.0
    )
    w = Workload(np.array([0.0, SPAN_S]), np.array([10, 10]), np.array([2, 2]), name="t")
    r = _run(cfg, w)
    capex_per_s = amortised_usd_per_year(capex_usd(cfg), 0.1, 4.0, 0.0) / YEAR_S
    assert r.cost_breakdown_usd["capex"] == pytest.approx(capex_per_s * SPAN_S, rel=1e-9)


def test_cloud_commitment_pays_min_replicas_over_the_span_and_bursts_on_demand():
    cfg = CloudFleetConfig(
        name="ri",
        tp=1,
        term="reserved_1y",
        instance="x",
        gpus_per_instance=1,
        price_usd_per_hour=3.6,
        fallback_price_usd_per_hour=7.2,
        min_replicas=2,
        max_replicas=2,
        initial_replicas=2,
        engine=EngineConfig(service="exponential", service_mean_s=1.0),
    )
    # Idle but committed: two replicas for the whole span.
    w = Workload(np.array([0.0, SPAN_S]), np.array([10, 10]), np.array([2, 2]), name="t")
    r = _run(cfg, w)
    assert r.cost_breakdown_usd["commitment"] == pytest.approx(2 * 3.6 * SPAN_S / 3600)
    assert r.cost_breakdown_usd["burst"] == 0.0
    assert r.total_cost_usd == pytest.approx(2 * 3.6 * SPAN_S / 3600)


def test_cloud_on_demand_drain_is_reported_as_overrun():
    cfg = CloudFleetConfig(
        name="od",
        tp=1,
        instance="x",
        gpus_per_instance=1,
        price_usd_per_hour=3.6,
        min_replicas=1,
        max_replicas=1,
        initial_replicas=1,
        provision_s=DistSpec("const", value=1.0),
    )
    r = _run(cfg, _burst_workload())
    assert r.meta["overrun_s"] > 0
    drain_usd = r.meta["overrun_s"] * 3.6 / 3600
    assert r.meta["overrun_variable_usd"] == pytest.approx(drain_usd, rel=0.05)
    assert r.total_cost_usd == pytest.approx((SPAN_S + r.meta["overrun_s"]) * 3.6 / 3600, rel=0.05)


def test_api_cost_is_every_token_and_late_answers_are_overrun():
    cfg = ApiFleetConfig(
        name="api",
        model="m",
        price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=2.0,
        price_usd_per_mtok_cached_input=1.0,
        ttft_s=DistSpec("const", value=1.0),
        output_tokens_per_s=DistSpec("const", value=100.0),
        network_rtt_s=DistSpec("const", value=0.0),
    )
    w = _burst_workload()
    r = _run(cfg, w)
    assert r.total_cost_usd == pytest.approx(40 * (2000 * 1.0 + 4000 * 2.0) / 1e6)
    assert r.meta["overrun_s"] == pytest.approx(1.0 + 40.0, abs=1e-6)  # last answer streams 41 s
    assert r.meta["overrun_variable_usd"] > 0


def test_scenario_accepts_commitment_terms_and_sim_run_bills_them(tmp_path):
    from sim.run import run_replications
    from sim.scenario import load_scenario
    from sim.summary import summarize

    path = tmp_path / "ri.toml"
    path.write_text(
        """
[scenario]
name = "ri"
seed = 1
[workload]
generator = "poisson"
rate_per_s = 0.5
duration_s = 600
prompt_tokens = { dist = "fixed", value = 200 }
output_tokens = { dist = "fixed", value = 50 }
[model]
name = "llama-3.1-8b"
[[fleet]]
name = "ri"
kind = "cloud"
gpu = "h100-sxm"
tp = 1
term = "reserved_3y_all_upfront"
instance = "x"
gpus_per_instance = 1
price_usd_per_hour = 1.8
fallback_price_usd_per_hour = 4.0
min_replicas = 1
max_replicas = 2
initial_replicas = 1
"""
    )
    scenario = load_scenario(path)
    reps = run_replications(scenario, n=1, seed=1)
    fleet = summarize(scenario, reps).fleets[0]
    span = reps[0].fleets[0].meta["span_s"]
    assert fleet.cost_breakdown_usd["commitment"] == pytest.approx(1.8 * span / 3600)
    bad = path.read_text().replace("reserved_3y_all_upfront", "reserved_forever")
    path.write_text(bad)
    from sim.errors import InputError

    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert err.value.field == "fleet[0].term"
