"""A fixed fleet in exponential-service mode against Erlang C (M/M/c theory)."""

from __future__ import annotations

import math

import numpy as np
from engine_helpers import workload
from scipy import stats

from sim.engine import simulate_fleet
from sim.engine.config import EngineConfig, SelfHostedFleetConfig
from sim.engine.result import OK


def erlang_c_wait_s(c: int, arrival_rate: float, mean_service_s: float) -> float:
    """Mean time in queue of M/M/c: P(wait) / (c * mu - lambda), P(wait) from Erlang C."""
    a = arrival_rate * mean_service_s  # offered load in Erlangs
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c / mean_service_s - arrival_rate)


def test_erlang_c_formula_on_a_textbook_value():
    # c = 2, a = 1 Erlang: P(wait) = 1/3, Wq = (1/3) / (2 - 1) with mu = 1.
    assert erlang_c_wait_s(2, 1.0, 1.0) == 1 / 3


def test_mean_wait_matches_erlang_c_within_batch_means_ci():
    c, mean_s, rho = 4, 1.0, 0.8
    lam = rho * c / mean_s  # 3.2 requests/s
    n, warmup, batches = 60_000, 5_000, 20
    rng = np.random.default_rng(2024)
    w = workload(np.cumsum(rng.exponential(1 / lam, n)), 1, 1)
    cfg = SelfHostedFleetConfig(
        name="mmc",
        servers=c,
        gpus_per_server=1,
        tp=1,
        gpu_price_usd=1.0,
        engine=EngineConfig(service="exponential", service_mean_s=mean_s),
    )
    r = simulate_fleet(cfg, w, profile_factory=None, rng=np.random.default_rng(7))
    assert (r.status == OK).all()
    wait = (r.start_s - r.arrival_s)[warmup:]
    means = np.array([b.mean() for b in np.array_split(wait, batches)])
    half = stats.t.ppf(0.995, batches - 1) * means.std(ddof=1) / math.sqrt(batches)
    expected = erlang_c_wait_s(c, lam, mean_s)  # 0.7111 s for c = 4, rho = 0.8
    assert abs(means.mean() - expected) < half
    # and the service times really are Exp(1): mean within 2% on 55k draws
    service = (r.finish_s - r.start_s)[warmup:]
    assert abs(service.mean() - mean_s) < 0.02
