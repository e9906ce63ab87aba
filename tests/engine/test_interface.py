"""simulate_fleet's contract: validation messages, progress callback, window layout."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, workload
from pydantic import ValidationError

from sim.engine import simulate_fleet
from sim.engine.config import EngineConfig, SelfHostedFleetConfig


def fleet(**engine):
    return SelfHostedFleetConfig(
        name="s",
        servers=1,
        gpus_per_server=2,
        tp=1,
        gpu_price_usd=100.0,
        engine=EngineConfig(**engine),
    )


def run(cfg, w, **kw):
    return simulate_fleet(
        cfg, w, profile_factory=factory_for(FakeProfile()), rng=np.random.default_rng(0), **kw
    )


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: fleet(router="random"), "router"),
        (lambda: fleet(service="exponential"), "service_mean_s"),
        (
            lambda: SelfHostedFleetConfig(
                name="s", servers=1, gpus_per_server=2, tp=4, gpu_price_usd=100.0
            ),
            "tp",
        ),
    ],
)
def test_bad_config_is_refused_when_built_naming_the_field(make, field):
    # The schema validates configs when they are made, so the engine never sees a bad one.
    with pytest.raises(ValidationError, match=field):
        make()


def test_model_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        simulate_fleet(
            fleet(),
            workload([0.0], 10, 10),
            profile_factory=factory_for(FakeProfile(fits=False)),
            rng=np.random.default_rng(0),
        )


def test_progress_is_reported_and_ends_at_one():
    seen = []
    run(fleet(), workload(np.arange(0.0, 500.0, 5.0), 100, 20), progress=seen.append)
    assert len(seen) > 10 and seen[-1] == 1.0
    assert all(0 <= a <= b for a, b in zip(seen, seen[1:], strict=False))


def test_windows_cover_zero_to_the_horizon():
    r = run(fleet(), workload([1.0, 2.0], 100, 20), window_s=60.0, horizon_s=150.0)
    ts = r.timeseries
    assert ts["window_start_s"].to_list() == [0.0, 60.0, 120.0]
    assert ts["window_end_s"].to_list() == [60.0, 120.0, 150.0]
    assert ts["arrivals"].to_list() == [2, 0, 0]
