"""Fit an engine profile's constants to measured benchmark runs: least squares on the log errors of
the replayed serving metrics (scipy), and leave-one-out (held-out) error of such a fit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sim.perf.profile import Calibration
from sim.perf.replay import BenchRun, EngineLimits, compare, simulate_run

# Constants a fit moves, with their bounds. The rest (all-reduce latencies, CUDA-graph limits,
# block size) come from the engines' documented defaults and microbenchmarks, not from fits.
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_bw_eff": (0.3, 0.98),
    "gemm_compute_eff": (0.2, 0.95),
    "attn_bw_eff": (0.2, 0.98),
    "attn_compute_eff": (0.1, 0.95),
    "step_overhead_s": (2e-5, 0.02),
    "per_seq_overhead_s": (1e-7, 3e-4),
    "cpu_overlap": (0.0, 0.99),
    "frontend_s_per_request": (1e-4, 0.5),
}
DEFAULT_FIT_PARAMS = ("gemm_bw_eff", "gemm_compute_eff", "step_overhead_s", "per_seq_overhead_s")
# Metrics a fit uses and their weights: throughput and TPOT carry the cost model; TTFT is noisier.
FIT_METRICS = {
    "output_throughput": 1.0,
    "median_tpot_ms": 1.0,
    "median_ttft_ms": 0.5,
    "median_e2el_ms": 0.5,
}

# (run, calibration) -> the ServingProfile to replay the run on.
ProfileBuilder = Callable[[BenchRun, Calibration], object]
# run -> its engine batching limits.
LimitsFor = Callable[[BenchRun], EngineLimits]


@dataclass(frozen=True)
class FitResult:
    calibration: Calibration
    params: tuple[str, ...]
    train_cost: float  # mean squared weighted log error over the fitted runs
    evaluations: int


def log_residuals(
    cal: Calibration,
    runs: Sequence[BenchRun],
    build: ProfileBuilder,
    limits: LimitsFor,
    metrics: dict[str, float] = FIT_METRICS,
) -> np.ndarray:
    """Weighted log(simulated / measured) for every fitted metric of every run."""
    out = []
    for run in runs:
        sim = simulate_run(run, build(run, cal), limits(run))
        for metric, err in compare(run.measured, sim).items():
            weight = metrics.get(metric)
            if weight:
                # A failed replay (no finished request) counts as a factor-e miss, not a crash.
                out.append(weight * math.log(1.0 + err) if err > -1.0 else weight)
    return np.asarray(out)


def _to_x(cal: Calibration, params) -> np.ndarray:
    return np.array([math.log(getattr(cal, p) + _shift(p)) for p in params])


def _shift(param: str) -> float:
    # cpu_overlap can be 0: fit log(1 + x) for it, log(x) for the strictly positive ones.
    return 1.0 if param == "cpu_overlap" else 0.0


def _from_x(base: Calibration, params, x) -> Calibration:
    vals = {}
    for p, v in zip(params, x, strict=True):
        lo, hi = FIT_BOUNDS[p]
        vals[p] = float(min(max(math.exp(v) - _shift(p), lo), hi))
    return replace(base, **vals)


def fit_calibration(
    runs: Sequence[BenchRun],
    base: Calibration,
    build: ProfileBuilder,
    limits: LimitsFor,
    params: Sequence[str] = DEFAULT_FIT_PARAMS,
    max_evaluations: int = 40,
    metrics: dict[str, float] = FIT_METRICS,
) -> FitResult:
    """Least squares (scipy's trust-region reflective) on the weighted log errors, in log
    space of each constant within FIT_BOUNDS, starting from `base`."""
    from scipy.optimize import least_squares

    params = tuple(params)
    unknown = [p for p in params if p not in FIT_BOUNDS]
    if unknown:
        raise ValueError(f"cannot fit {unknown[0]!r}; fittable: {', '.join(FIT_BOUNDS)}")
    lo = [math.log(FIT_BOUNDS[p][0] + _shift(p)) for p in params]
    hi = [math.log(FIT_BOUNDS[p][1] + _shift(p)) for p in params]
    x0 = np.clip(_to_x(base, params), lo, hi)
    count = [0]

    def residuals(x):
        count[0] += 1
        return log_residuals(_from_x(base, params, x), runs, build, limits, metrics)

    sol = least_squares(
        residuals, x0, bounds=(lo, hi), diff_step=0.05, max_nfev=max_evaluations, x_scale=1.0
    )
    cal = _from_x(base, params, sol.x)
    cost = float(np.mean(sol.fun**2)) if len(sol.fun) else 0.0
    return FitResult(cal, params, cost, count[0])


def leave_one_out(
    runs: Sequence[BenchRun],
    base: Calibration,
    build: ProfileBuilder,
    limits: LimitsFor,
    params: Sequence[str] = DEFAULT_FIT_PARAMS,
    max_evaluations: int = 40,
) -> list[dict]:
    """For each run: fit on all the others, replay it with that fit; its held-out errors."""
    out = []
    for i, run in enumerate(runs):
        rest = [r for j, r in enumerate(runs) if j != i]
        fitted = fit_calibration(rest, base, build, limits, params, max_evaluations).calibration
        sim = simulate_run(run, build(run, fitted), limits(run))
        out.append(compare(run.measured, sim))
    return out


def median_abs(errors: Sequence[dict]) -> dict[str, float]:
    """Median absolute error per metric over runs that have it."""
    keys = sorted({k for e in errors for k in e})
    return {k: float(np.median([abs(e[k]) for e in errors if k in e])) for k in keys}
