"""Summary statistics of a Workload: volume, rates, burstiness and token percentiles."""

from __future__ import annotations

import numpy as np

from sim.workload import Workload

PEAK_WINDOW_S = 60.0
PERCENTILES = (50, 90, 99)


def _busiest_window_count(arrival_s: np.ndarray, window_s: float) -> int:
    """Most arrivals in any half-open window [t, t + window_s) that starts at an arrival."""
    if len(arrival_s) == 0:
        return 0
    ends = np.searchsorted(arrival_s, arrival_s + window_s, side="left")
    return int(np.max(ends - np.arange(len(arrival_s))))


def _token_summary(tokens: np.ndarray) -> dict:
    if len(tokens) == 0:
        return {"mean": 0.0, **{f"p{q}": 0.0 for q in PERCENTILES}, "max": 0}
    pct = np.percentile(tokens, PERCENTILES)
    return {
        "mean": float(tokens.mean()),
        **{f"p{q}": float(v) for q, v in zip(PERCENTILES, pct, strict=True)},
        "max": int(tokens.max()),
    }


def trace_stats(w: Workload) -> dict:
    """Requests, span, mean and peak rates, burstiness and token percentiles of `w`.

    span_s runs from the first to the last arrival and mean_rate_per_s = requests / span_s.
    peak_rate_per_s is the busiest sliding 60 s window (starting at an arrival) / 60;
    busiest_minute_ratio compares the busiest clock-aligned minute with the mean minute.
    interarrival_cv is std / mean of the gaps (1 for Poisson); fano_60s is the variance / mean of
    the per-minute counts (1 for Poisson, larger for bursty traffic).
    """
    n = len(w)
    arrival_s = w.arrival_s
    span_s = float(arrival_s[-1] - arrival_s[0]) if n > 1 else 0.0
    mean_rate = n / span_s if span_s > 0 else 0.0
    peak_rate = _busiest_window_count(arrival_s, PEAK_WINDOW_S) / PEAK_WINDOW_S
    gaps = np.diff(arrival_s)
    cv = float(gaps.std() / gaps.mean()) if len(gaps) and gaps.mean() > 0 else 0.0
    # Whole minutes only, so a partial last minute does not look like a lull.
    if n > 1 and span_s >= PEAK_WINDOW_S:
        minutes = int(span_s // PEAK_WINDOW_S)
        rel = arrival_s - arrival_s[0]
        counts = np.bincount((rel // PEAK_WINDOW_S).astype(np.int64), minlength=minutes + 1)
        counts = counts[:minutes]
        fano = float(counts.var() / counts.mean()) if counts.mean() > 0 else 0.0
        busiest_minute_ratio = float(counts.max() / counts.mean()) if counts.mean() > 0 else 0.0
        empty_minutes = int(np.sum(counts == 0))
    else:
        fano, busiest_minute_ratio, empty_minutes = 0.0, 0.0, 0
    return {
        "name": w.name,
        "requests": n,
        "span_s": span_s,
        "mean_rate_per_s": mean_rate,
        "peak_rate_per_s": peak_rate,
        "peak_to_mean": peak_rate / mean_rate if mean_rate > 0 else 0.0,
        "busiest_minute_ratio": busiest_minute_ratio,
        "empty_minutes": empty_minutes,
        "interarrival_cv": cv,
        "fano_60s": fano,
        "prompt_tokens": _token_summary(w.prompt_tokens),
        "output_tokens": _token_summary(w.output_tokens),
        "cached_prompt_share": (
            float(w.cached_prompt_tokens.sum() / w.prompt_tokens.sum()) if n else 0.0
        ),
    }
