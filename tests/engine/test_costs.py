"""Costs: an idle fleet costs exactly its fixed part; API prices per token, tier and batch."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, workload

from sim.engine import simulate_fleet
from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    DistSpec,
    SelfHostedFleetConfig,
    VolumeTier,
)
from sim.engine.self_hosted import amortised_usd_per_year

EMPTY = workload([], 1, 1)
YEAR_S = 365.25 * 86400


def run(cfg, w=EMPTY, **kw):
    return simulate_fleet(
        cfg, w, profile_factory=factory_for(FakeProfile()), rng=np.random.default_rng(0), **kw
    )


def test_idle_self_hosted_costs_capex_colo_and_idle_power():
    cfg = SelfHostedFleetConfig(
        name="dc",
        servers=2,
        gpus_per_server=8,
        tp=8,
        gpu_price_usd=25_000.0,
        server_price_usd=50_000.0,
        lifetime_years=4.0,
        residual_frac=0.1,
        host_power_w=1000.0,
        pue=1.5,
        electricity_usd_per_kwh=0.10,
        colo_usd_per_month=1500.0,
    )
    r = run(cfg, horizon_s=3600.0)
    capex = 2 * (8 * 25_000 + 50_000)  # 500,000 USD
    capex_hour = capex * 0.9 / 4 / YEAR_S * 3600  # straight-line over 4 years, 10% residual
    colo_hour = 2 * 1500 / (YEAR_S / 12) * 3600
    # 16 GPUs idle at FakeGpu.idle_w = 100 W plus 2 hosts at 1 kW, times PUE 1.5, for one hour.
    power_hour = (16 * 100 + 2 * 1000) / 1000 * 1.5 * 0.10
    assert r.total_cost_usd == pytest.approx(capex_hour + colo_hour + power_hour, rel=1e-12)
    assert r.cost_breakdown_usd["power"] == pytest.approx(power_hour, rel=1e-12)
    assert r.timeseries["cost_usd"].to_list() == pytest.approx([r.total_cost_usd / 60] * 60)
    assert r.timeseries["busy_fraction"].max() == 0.0


def test_annuity_with_cost_of_capital():
    # 100 over 1 year at 10 % with no residual: one payment of 110.
    assert amortised_usd_per_year(100.0, 0.0, 1.0, 0.10) == pytest.approx(110.0)
    # Straight line without a cost of capital.
    assert amortised_usd_per_year(100.0, 0.2, 4.0, 0.0) == pytest.approx(20.0)


def cloud(**kw):
    base = dict(
        name="c",
        tp=8,
        gpus_per_instance=8,
        price_usd_per_hour=10.0,
        min_replicas=1,
        initial_replicas=1,
        max_replicas=1,
    )
    base.update(kw)
    return CloudFleetConfig(**base)


@pytest.mark.parametrize(
    "billing,horizon_s,expected_usd",
    [
        ("per_second", 3600.0, 10.0),  # one instance-hour
        ("per_second", 30.0, 10.0 * 60 / 3600),  # the 60 s minimum
        ("per_hour", 5400.0, 20.0),  # 1.5 h billed as 2 started hours
    ],
)
def test_idle_cloud_costs_its_minimum_replica(billing, horizon_s, expected_usd):
    r = run(cloud(billing=billing), horizon_s=horizon_s)
    assert r.total_cost_usd == pytest.approx(expected_usd, rel=1e-12)


def test_fractional_instance_replica_pays_its_share():
    r = run(cloud(tp=2), horizon_s=3600.0)  # 2 of 8 GPUs
    assert r.total_cost_usd == pytest.approx(2.5, rel=1e-12)


def test_scale_to_zero_cloud_with_no_traffic_costs_nothing():
    r = run(cloud(min_replicas=0, initial_replicas=0), horizon_s=3600.0)
    assert r.total_cost_usd == 0.0


def test_missing_price_names_the_field():
    with pytest.raises(ValueError, match="price_usd_per_hour"):
        run(cloud(price_usd_per_hour=None), horizon_s=10.0)
    with pytest.raises(ValueError, match="gpu_price_usd"):
        run(SelfHostedFleetConfig(name="s", tp=8), horizon_s=10.0)
    with pytest.raises(ValueError, match="price_usd_per_mtok_output"):
        run(
            ApiFleetConfig(name="a", model="m", price_usd_per_mtok_input=1.0), workload([0.0], 1, 1)
        )


def api(**kw):
    base = dict(
        name="a",
        price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=2.0,
        price_usd_per_mtok_cached_input=0.5,
        price_usd_per_request=0.001,
        network_rtt_s=DistSpec("const", value=0.1),
        ttft_s=DistSpec("const", value=0.5),
        output_tokens_per_s=DistSpec("const", value=50.0),
    )
    base.update(kw)
    return ApiFleetConfig(**base)


def test_api_price_and_latency_per_request():
    w = workload([0.0, 10.0], [1000, 2000], [500, 100], cached=[200, 0])
    r = run(api(), w)
    expected = [(800 * 1 + 200 * 0.5 + 500 * 2) / 1e6 + 0.001, (2000 * 1 + 100 * 2) / 1e6 + 0.001]
    assert r.cost_usd.tolist() == pytest.approx(expected, rel=1e-12)
    assert r.total_cost_usd == pytest.approx(sum(expected), rel=1e-12)
    # network RTT + TTFT + output / speed
    assert r.first_token_s.tolist() == pytest.approx([0.6, 10.6])
    assert r.finish_s.tolist() == pytest.approx([0.6 + 500 / 50, 10.6 + 100 / 50])


def test_api_volume_tier_and_batch_discount():
    w = workload([0.0, 1.0, 2.0], 500_000, 500_000)  # 1 Mtok each
    tiers = [VolumeTier(above_mtok=1.5, factor=0.5)]
    r = run(api(volume_tiers=tiers, price_usd_per_request=0.0), w)
    full = 0.5 * 1.0 + 0.5 * 2.0  # 1.5 USD per request
    # The third request starts with 2 Mtok already billed this month: above 1.5 Mtok.
    assert r.cost_usd.tolist() == pytest.approx([full, full, full * 0.5])
    b = run(
        api(batch=True, batch_latency_s=DistSpec("const", value=3600.0), price_usd_per_request=0.0),
        w,
    )
    assert b.cost_usd.tolist() == pytest.approx([full * 0.5] * 3)
    assert b.finish_s.tolist() == pytest.approx([3600.0, 3601.0, 3602.0])
