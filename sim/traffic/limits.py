"""Limits on traffic, checked before anything is allocated: requests, span, tokens, file size.

The request budget is checked from rates and durations alone (`estimate_requests`), so a scenario
asking for 1e308 requests fails with a sentence instead of an allocation error. Everything here
raises ValueError; `build_workload` and the scenario schema turn it into an InputError.
"""

from __future__ import annotations

import math
import os

# 100M requests is about 3.2 GB of per-request arrays (arrival, prompt, output, cached) and
# hours of simulation; the 27.3M-row Azure 2024 conv week fits with room to tile or replicate.
MAX_REQUESTS = 100_000_000
# Ten years of traffic. Longer spans are typos (ms read as s) or corrupt rows, and a
# float64 second still resolves 1 us after ten years.
MAX_SPAN_S = 10 * 365.25 * 86400.0
# The largest context windows shipped today are 1M-10M tokens; a bigger count is a corrupt cell.
MAX_TOKENS_PER_REQUEST = 10_000_000
# Beyond this CV, Gamma(1/cv^2) gaps underflow to exactly 0 for almost every draw: arrivals
# collapse into a few instants and the generator loops without reaching the duration.
MAX_GAMMA_CV = 100.0
# exp(10 Z) spans 1e-9 to 1e9 at 2 sigma: wider is not a length distribution; exp(sigma^2/2)
# (the mean) overflows a float near sigma = 37.
MAX_LOGNORMAL_SIGMA = 10.0
# Markov-modulated state changes are a Python loop (a few us each); a million is seconds.
MAX_STATE_CHANGES = 1_000_000
# Trace files larger than this are refused before reading; 27.3M Azure 2024 rows are ~1.2 GB.
DEFAULT_MAX_TRACE_BYTES = 2 * 1024**3
MAX_TRACE_BYTES_ENV = "INFERCOST_MAX_TRACE_BYTES"


def max_trace_bytes() -> int:
    """The trace size cap: $INFERCOST_MAX_TRACE_BYTES when set, else 2 GiB."""
    text = os.environ.get(MAX_TRACE_BYTES_ENV)
    if not text:
        return DEFAULT_MAX_TRACE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise ValueError(f"${MAX_TRACE_BYTES_ENV} must be a positive byte count, got {text[:40]!r}")
    return value


def check_requests(
    expected: float,
    what: str,
    max_requests: int = MAX_REQUESTS,
    hint: str = "lower the rate, the duration or the scale",
) -> None:
    """ValueError when `expected` requests (a mean, before drawing) exceed the budget."""
    if not (expected <= max_requests):  # NaN fails too
        raise ValueError(
            f"{what} would make about {expected:.3g} requests per replication, over the budget "
            f"of {max_requests:,}; {hint}"
        )


def check_span(span_s: float, what: str) -> None:
    """ValueError when a duration is not finite or longer than MAX_SPAN_S."""
    if not (0 <= span_s <= MAX_SPAN_S):
        raise ValueError(f"{what} is {span_s:.3g} s, over the limit of 10 years ({MAX_SPAN_S:g} s)")


def _number(cfg: dict, key: str, default: float | None = None) -> float | None:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def estimate_requests(workload: dict, trace_requests: int | None = None) -> float:
    """The most requests any step of a `[workload]` table allocates, from rates and durations.

    Generators count their candidates (a diurnal process draws at its peak rate); a trace
    counts `trace_requests` when known (else 0); `rate_scale` > 1 and `tile_to_s` multiply.
    Means, not bounds: a Poisson count exceeds its mean by a few standard deviations at most.
    Keys missing or of the wrong type are skipped (the schema reports them).
    """
    generator = workload.get("generator")
    duration_s = _number(workload, "duration_s", 0.0)
    if generator in ("poisson", "gamma"):
        count = _number(workload, "rate_per_s", 0.0) * duration_s
    elif generator == "diurnal":
        ratio = max(_number(workload, "peak_to_trough", 3.0), 1.0)
        peak = _number(workload, "rate_per_s", 0.0) * 2 * ratio / (ratio + 1)
        count = peak * duration_s
    elif generator == "mmpp":
        rates = workload.get("rates_per_s") or []
        dwells = workload.get("dwell_s") or []
        pairs = [
            (float(r), float(d))
            for r, d in zip(rates, dwells, strict=False)
            if isinstance(r, int | float) and isinstance(d, int | float) and d > 0
        ]
        total = sum(d for _, d in pairs)
        count = sum(r * d for r, d in pairs) / total * duration_s if total > 0 else 0.0
    else:
        count = float(trace_requests or 0)
        duration_s = 0.0  # a trace's span is only known once read
    steps = [count]
    scale = _number(workload, "rate_scale", 1.0)
    if scale > 1:
        count *= scale
        steps.append(count)
    stretch = _number(workload, "time_stretch", 1.0)
    tile_s = _number(workload, "tile_to_s")
    if tile_s is not None and duration_s > 0 and stretch > 0:
        steps.append(count * tile_s / (duration_s * stretch))
    return max(steps) if all(math.isfinite(s) for s in steps) else math.inf


def check_workload_budget(
    workload: dict, trace_requests: int | None = None, max_requests: int = MAX_REQUESTS
) -> float:
    """`estimate_requests`, raising ValueError over `max_requests`; returns the estimate."""
    expected = estimate_requests(workload, trace_requests)
    check_requests(expected, "this workload", max_requests)
    return expected
