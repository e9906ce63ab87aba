"""Synthetic arrival processes (Poisson, Gamma renewal, diurnal, Markov-modulated bursts).

Each generator draws arrival times on [0, duration_s) from the `numpy.random.Generator` it is
given, then token lengths from a length model (see sim/traffic/lengths.py).
"""

from __future__ import annotations

import math

import numpy as np

from sim.traffic import limits
from sim.workload import Workload


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number, got {value}")
    return value


def _budget(name: str, rate_per_s: float, duration_s: float) -> None:
    """Refuse before drawing: a duration over ten years, or more requests than the budget."""
    limits.check_span(duration_s, f"{name} duration_s")
    limits.check_requests(rate_per_s * duration_s, name, limits.MAX_REQUESTS)


def _workload(arrival_s: np.ndarray, lengths, rng, name: str, meta: dict) -> Workload:
    prompt, output = lengths.sample(len(arrival_s), rng)
    meta = {**meta, "lengths": repr(lengths)}
    return Workload(arrival_s.astype(np.float64), prompt, output, name=name, meta=meta)


def _uniform_arrivals(rate_per_s: float, start_s: float, end_s: float, rng) -> np.ndarray:
    """A homogeneous Poisson process: a Poisson count, placed uniformly and sorted."""
    n = rng.poisson(rate_per_s * (end_s - start_s))
    return np.sort(rng.uniform(start_s, end_s, size=n))


def poisson(rate_per_s: float, duration_s: float, lengths, rng: np.random.Generator) -> Workload:
    """Memoryless arrivals at a constant rate (inter-arrival CV = 1)."""
    rate_per_s = _positive("rate_per_s", rate_per_s)
    duration_s = _positive("duration_s", duration_s)
    _budget("poisson", rate_per_s, duration_s)
    arrivals = _uniform_arrivals(rate_per_s, 0.0, duration_s, rng)
    meta = {"generator": "poisson", "rate_per_s": rate_per_s, "duration_s": duration_s}
    return _workload(arrivals, lengths, rng, f"poisson(rate={rate_per_s:g}/s)", meta)


def gamma_arrivals(
    rate_per_s: float, cv: float, duration_s: float, lengths, rng: np.random.Generator
) -> Workload:
    """Renewal process with Gamma inter-arrivals of the given coefficient of variation.

    cv > 1 gives bursts (clusters of short gaps between long silences); cv = 1 is Poisson.
    """
    rate_per_s = _positive("rate_per_s", rate_per_s)
    cv = _positive("cv", cv)
    if cv > limits.MAX_GAMMA_CV:
        raise ValueError(f"gamma cv must be at most {limits.MAX_GAMMA_CV:g}, got {cv:g}")
    duration_s = _positive("duration_s", duration_s)
    _budget("gamma", rate_per_s, duration_s)
    shape = 1.0 / cv**2
    scale = 1.0 / (rate_per_s * shape)
    expected = rate_per_s * duration_s
    chunks, last_s, drawn = [], 0.0, 0
    while last_s < duration_s:
        # Heavy-tailed gaps can fall far short of the duration; never draw past the budget.
        limits.check_requests(drawn, "gamma (drawn so far)", limits.MAX_REQUESTS)
        drawn += int(expected + 5 * math.sqrt(expected) + 16)
        gaps = rng.gamma(shape, scale, size=int(expected + 5 * math.sqrt(expected) + 16))
        times = last_s + np.cumsum(gaps)
        chunks.append(times)
        last_s = float(times[-1])
    arrivals = np.concatenate(chunks)
    arrivals = arrivals[arrivals < duration_s]
    meta = {"generator": "gamma", "rate_per_s": rate_per_s, "cv": cv, "duration_s": duration_s}
    return _workload(arrivals, lengths, rng, f"gamma(rate={rate_per_s:g}/s, cv={cv:g})", meta)


def diurnal_envelope(
    t_s: np.ndarray, peak_to_trough: float, period_s: float, peak_hour: float
) -> np.ndarray:
    """Relative rate in [trough, 1]: a sinusoid peaking at `peak_hour` hours after t = 0."""
    amplitude = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    phase = 2 * math.pi * (np.asarray(t_s) - peak_hour * 3600.0) / period_s
    return (1.0 + amplitude * np.cos(phase)) / (1.0 + amplitude)


def diurnal(
    mean_rate_per_s: float,
    duration_s: float,
    lengths,
    rng: np.random.Generator,
    *,
    peak_to_trough: float = 3.0,
    period_s: float = 86400.0,
    peak_hour: float = 14.0,
) -> Workload:
    """Non-homogeneous Poisson arrivals under a daily sinusoid, by thinning a peak-rate process.

    The rate averages `mean_rate_per_s` over a whole period; peak / trough = `peak_to_trough`.
    """
    mean_rate_per_s = _positive("mean_rate_per_s", mean_rate_per_s)
    duration_s = _positive("duration_s", duration_s)
    period_s = _positive("period_s", period_s)
    if not peak_to_trough >= 1:
        raise ValueError(f"peak_to_trough must be at least 1, got {peak_to_trough}")
    if not math.isfinite(peak_to_trough):
        raise ValueError(f"peak_to_trough must be finite, got {peak_to_trough}")
    amplitude = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    peak_rate = mean_rate_per_s * (1.0 + amplitude)
    _budget("diurnal", peak_rate, duration_s)
    candidates = _uniform_arrivals(peak_rate, 0.0, duration_s, rng)
    keep = diurnal_envelope(candidates, peak_to_trough, period_s, peak_hour)
    arrivals = candidates[rng.random(len(candidates)) < keep]
    meta = {
        "generator": "diurnal",
        "mean_rate_per_s": mean_rate_per_s,
        "peak_to_trough": peak_to_trough,
        "period_s": period_s,
        "peak_hour": peak_hour,
        "duration_s": duration_s,
    }
    name = f"diurnal(mean={mean_rate_per_s:g}/s, peak/trough={peak_to_trough:g})"
    return _workload(arrivals, lengths, rng, name, meta)


def mmpp(
    rates_per_s: list[float],
    mean_dwell_s: list[float],
    duration_s: float,
    lengths,
    rng: np.random.Generator,
) -> Workload:
    """Markov-modulated Poisson process: state i emits at rates_per_s[i] for an exponential time
    of mean mean_dwell_s[i], then jumps to another state chosen uniformly.

    The first state is drawn from the time-stationary distribution (proportional to dwell).
    """
    if len(rates_per_s) == 0 or len(rates_per_s) != len(mean_dwell_s):
        raise ValueError("mmpp needs equally long, non-empty rates_per_s and mean_dwell_s lists")
    rates = [float(r) for r in rates_per_s]
    if any(not (r >= 0 and math.isfinite(r)) for r in rates):
        raise ValueError(f"mmpp rates must be non-negative numbers, got {rates}")
    dwells = [_positive("mean_dwell_s", d) for d in mean_dwell_s]
    duration_s = _positive("duration_s", duration_s)
    n_states = len(rates)
    limits.check_span(duration_s, "mmpp duration_s")
    long_run_rate = sum(r * d for r, d in zip(rates, dwells, strict=True)) / sum(dwells)
    limits.check_requests(long_run_rate * duration_s, "mmpp", limits.MAX_REQUESTS)
    # Uniform jumps visit every state equally often: one visit per sum(dwells) / n seconds.
    changes = duration_s * n_states / sum(dwells)
    if not changes <= limits.MAX_STATE_CHANGES:
        raise ValueError(
            f"mmpp would change state about {changes:.3g} times, over the limit of "
            f"{limits.MAX_STATE_CHANGES:,}; lengthen dwell_s or shorten duration_s"
        )
    weights = np.asarray(dwells) / sum(dwells)
    state = int(rng.choice(n_states, p=weights))
    chunks, t_s, sojourns, drawn = [], 0.0, [], 0.0
    while t_s < duration_s:
        end_s = min(duration_s, t_s + rng.exponential(dwells[state]))
        drawn += rates[state] * (end_s - t_s)
        limits.check_requests(drawn, "mmpp (drawn so far)", limits.MAX_REQUESTS)
        chunks.append(_uniform_arrivals(rates[state], t_s, end_s, rng))
        sojourns.append((t_s, state))
        t_s = end_s
        if n_states > 1:
            others = [s for s in range(n_states) if s != state]
            state = others[int(rng.integers(len(others)))]
    arrivals = np.concatenate(chunks) if chunks else np.empty(0)
    meta = {
        "generator": "mmpp",
        "rates_per_s": rates,
        "mean_dwell_s": dwells,
        "duration_s": duration_s,
        "state_changes": len(sojourns),
    }
    name = f"mmpp(rates={'/'.join(f'{r:g}' for r in rates)}/s)"
    return _workload(arrivals, lengths, rng, name, meta)
