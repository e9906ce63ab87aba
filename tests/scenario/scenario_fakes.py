"""A stand-in simulator for testing the run pipeline (streams, replications, summaries, outputs)
without the real engine: simple closed-form latencies and costs drawn from the rng it is given.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sim.engine.config import ApiFleetConfig, CloudFleetConfig
from sim.engine.result import OK, TIMESERIES_COLUMNS, UNFINISHED, FleetResult
from sim.run import Backend
from sim.workload import Workload


def fake_build_workload(spec, *, base_dir, rng: np.random.Generator, source: str) -> Workload:
    """Poisson arrivals at rate_per_s * rate_scale for duration_s; lengths from a geometric law."""
    rate = (spec.rate_per_s or 1.0) * (spec.rate_scale or 1.0)
    duration = spec.duration_s or 600.0
    n = rng.poisson(rate * duration)
    arrival = np.sort(rng.uniform(0.0, duration, n))
    return Workload(
        arrival_s=arrival,
        prompt_tokens=rng.geometric(1 / 500, n).astype(np.int64),
        output_tokens=rng.geometric(1 / 100, n).astype(np.int64),
        name=f"fake poisson({rate}/s)",
    )


def fake_profile_factory(scenario):
    return lambda gpu, tp, precision=None, mem_util=0.9: None


def _timeseries(arrival, finish, cost_rate_usd_per_s, window_s, end_s) -> pl.DataFrame:
    edges = np.arange(0.0, end_s + window_s, window_s)
    if len(edges) < 2:
        edges = np.array([0.0, window_s])
    starts, ends = edges[:-1], edges[1:]
    arrivals = np.histogram(arrival, edges)[0].astype(float)
    completions = np.histogram(finish[np.isfinite(finish)], edges)[0].astype(float)
    cost = cost_rate_usd_per_s * (ends - starts)
    data = {c: np.full(len(starts), np.nan) for c in TIMESERIES_COLUMNS}
    data.update(
        window_start_s=starts,
        window_end_s=ends,
        arrivals=arrivals,
        completions=completions,
        throttled=np.zeros(len(starts)),
        failed=np.zeros(len(starts)),
        queue_len=np.zeros(len(starts)),
        replicas=np.ones(len(starts)),
        busy_fraction=np.full(len(starts), 0.5),
        cost_usd=cost,
        cumulative_cost_usd=np.cumsum(cost),
        e2e_p99_s=completions * 0.01,
    )
    return pl.DataFrame(data)


def fake_simulate_fleet(
    cfg, workload, *, profile_factory, rng, window_s=60.0, horizon_s=None, progress=None
):
    n = len(workload)
    arrival = workload.arrival_s
    ttft = rng.exponential(0.3, n)
    decode = workload.output_tokens / rng.uniform(40.0, 80.0, n)
    first = arrival + ttft
    finish = first + decode
    end_s = float(finish.max()) if n else window_s
    status = np.full(n, OK, dtype=np.int8)
    if horizon_s is not None:
        late = finish > horizon_s
        status[late] = UNFINISHED
        finish = np.where(late, np.nan, finish)
        end_s = horizon_s
    if isinstance(cfg, ApiFleetConfig):
        tokens_cost = (
            workload.prompt_tokens * cfg.price_usd_per_mtok_input
            + workload.output_tokens * cfg.price_usd_per_mtok_output
        ) / 1e6
        per_request = np.where(status == OK, tokens_cost, 0.0)
        total = float(per_request.sum())
        rate = total / max(end_s, 1e-9)
        breakdown = {"tokens": total}
    else:
        hourly = cfg.price_usd_per_hour if isinstance(cfg, CloudFleetConfig) else 10.0
        rate = hourly / 3600.0
        total = rate * end_s
        per_request = np.full(n, total / max(n, 1))
        breakdown = {"compute": total}
    return FleetResult(
        name=cfg.name,
        kind=cfg.kind,
        arrival_s=arrival,
        start_s=arrival.copy(),
        first_token_s=first,
        finish_s=finish,
        prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens,
        status=status,
        attempts=np.ones(n, dtype=np.int16),
        cost_usd=per_request,
        timeseries=_timeseries(arrival, finish, rate, window_s, end_s),
        total_cost_usd=total,
        cost_breakdown_usd=breakdown,
    )


FAKE_BACKEND = Backend(fake_simulate_fleet, fake_build_workload, fake_profile_factory)
