"""A self-hosted fleet overflowing to an API when its queues are long."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import workload

from sim.engine import simulate_fleet
from sim.engine.config import ApiFleetConfig, DistSpec, EngineConfig, SelfHostedFleetConfig
from sim.engine.result import OK


def test_overflow_goes_to_the_api_and_pays_its_exact_price():
    api = ApiFleetConfig(
        name="spill",
        price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=1.0,
        network_rtt_s=DistSpec("const", value=0.0),
        ttft_s=DistSpec("const", value=0.2),
        output_tokens_per_s=DistSpec("const", value=100.0),
    )
    cfg = SelfHostedFleetConfig(
        name="hy",
        servers=1,
        gpus_per_server=1,
        tp=1,
        gpu_price_usd=1000.0,
        overflow=api,
        overflow_queue_threshold=2,
        engine=EngineConfig(service="exponential", service_mean_s=10.0),
    )
    # 10 requests at once on one server: 1 in service, 2 may wait, the other 7 overflow.
    w = workload(np.zeros(10), 100, 100)
    r = simulate_fleet(cfg, w, profile_factory=None, rng=np.random.default_rng(0))
    assert (r.status == OK).all()
    assert r.served_by.tolist() == [0, 0, 0] + [1] * 7
    api_share = r.cost_usd[r.served_by == 1]
    assert api_share.tolist() == pytest.approx([200 / 1e6] * 7)
    assert r.cost_breakdown_usd["api_overflow"] == pytest.approx(7 * 200 / 1e6)
    assert r.finish_s[3] == pytest.approx(0.2 + 1.0)
    assert r.cost_usd.sum() == pytest.approx(r.total_cost_usd)
