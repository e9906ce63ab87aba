"""Turning the per-request arrays and per-window accumulators into the time series, the per-window
cost and each request's share of the cost.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from sim.engine.events import WINDOW_EVENTS
from sim.engine.result import DROPPED, FAILED, OK, TIMESERIES_COLUMNS
from sim.errors import InputError

# Every window costs a row per metric in the time series and a float in each accumulator: a
# million windows (a year in 30 s windows) is ample; window_s = 1e-6 over an hour would be 3.6e9.
MAX_WINDOWS = 1_000_000


def check_window_count(end_s: float, window_s: float) -> int:
    """The number of windows [0, end_s] splits into; InputError beyond MAX_WINDOWS.

    Callable before a run (with the horizon or the workload's span) so nothing is allocated."""
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(
            "scenario", "scenario.window_s", f"must be a positive number, got {window_s!r}"
        )
    ratio = end_s / window_s
    if not math.isfinite(ratio) or ratio > MAX_WINDOWS:
        raise InputError(
            "scenario",
            "scenario.window_s",
            f"{end_s:g} s in windows of {window_s:g} s is {ratio:.3g} windows, over the limit of "
            f"{MAX_WINDOWS:,}; use longer windows or a shorter horizon",
        )
    return max(1, math.ceil(ratio - 1e-12))


class WindowSums:
    """Adds amounts spread over time intervals into fixed-width windows, for arrays of intervals
    (the streaming path's request-seconds spent waiting; a replica's GPU busy seconds go one
    interval at a time into `replica.BusySums`, which gives the same floats).

    Each batch is spread `CHUNK` intervals at a time, adding each window's parts in call order
    (`np.add.at`), which gives the same floats as adding the intervals one at a time.
    """

    CHUNK = 1 << 16  # intervals spread at once (bounds the temporary arrays)

    def __init__(self, window_s: float, weight: float = 1.0):
        self.window_s = window_s
        self.weight = weight  # e.g. the GPUs of one replica
        self._values = np.zeros(0)

    def add_intervals(self, t0: np.ndarray, t1: np.ndarray) -> None:
        """Add weight * (overlap of [t0_i, t1_i] with each window) for every interval i."""
        t0 = np.asarray(t0, dtype=np.float64)
        t1 = np.asarray(t1, dtype=np.float64)
        for a in range(0, len(t0), self.CHUNK):
            self._spread(t0[a : a + self.CHUNK], t1[a : a + self.CHUNK])

    def _spread(self, t0: np.ndarray, t1: np.ndarray) -> None:
        if not len(t0):
            return
        w = self.window_s
        check_window_count(float(t1.max()), w)  # before any cast or allocation
        k0 = (t0 // w).astype(np.int64)
        k1 = (t1 // w).astype(np.int64)
        n_windows = int(k1.max()) + 1
        if n_windows > len(self._values):
            self._values = np.concatenate([self._values, np.zeros(n_windows - len(self._values))])
        # One part per window an interval touches, in call order: first, whole middles, last.
        parts = k1 - k0 + 1
        j = np.repeat(np.arange(len(t0)), parts)
        pos = np.arange(len(j)) - np.repeat(np.cumsum(parts) - parts, parts)
        last = pos == parts[j] - 1
        amount = np.where(
            pos == 0,
            np.where(last, t1[j] - t0[j], (k0[j] + 1) * w - t0[j]),
            np.where(last, t1[j] - k1[j] * w, w),
        )
        np.add.at(self._values, k0[j] + pos, amount * self.weight)

    def array(self, n_windows: int) -> np.ndarray:
        out = np.zeros(n_windows)
        m = min(n_windows, len(self._values))
        out[:m] = self._values[:m]
        return out


def window_edges(end_s: float, window_s: float) -> np.ndarray:
    """Window boundaries 0, w, 2w, ..., end: the last window may be shorter."""
    n = check_window_count(end_s, window_s)
    edges = np.arange(n + 1, dtype=np.float64) * window_s
    edges[-1] = end_s
    return edges


def interval_overlap(edges: np.ndarray, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Sum over intervals [start, end) of their overlap with each window, vectorised.

    Uses integral_0^T #{intervals covering t} dt = sum_i (min(T, end_i) - min(T, start_i)).
    """
    if len(start_s) == 0:
        return np.zeros(len(edges) - 1)

    def cum(x: np.ndarray) -> np.ndarray:
        xs = np.sort(x)
        csum = np.concatenate([[0.0], np.cumsum(xs)])
        k = np.searchsorted(xs, edges, side="right")
        return csum[k] + edges * (len(xs) - k)

    integral = cum(end_s) - cum(start_s)
    return np.diff(integral)


QUANTILES = np.array([50, 90, 99]) / 100  # p50, p90, p99 as `np.percentile` divides them


def _percentiles(window_idx: np.ndarray, values: np.ndarray, n_windows: int) -> np.ndarray:
    """p50, p90 and p99 of `values` in each window (NaN where a window has none): the floats
    `np.percentile(values[window_idx == k], [50, 90, 99])` gives for every window k, computed
    for all windows at once (one sort instead of a call per window and metric).

    NumPy's default ("linear") method, step by step: the rank (n - 1) * q in the window's
    sorted values, its floor and the next rank (both the last rank from n - 1 up, where the
    weight becomes rank + 1, as NumPy marks them), and the interpolation a + (b - a) * g, or
    b - (b - a) * (1 - g) for g >= 0.5; a window holding a NaN gives NaN.
    tests/engine/test_accounting.py checks it bit for bit against np.percentile."""
    out = np.full((n_windows, 3), np.nan)
    if len(values) == 0:
        return out
    count = np.bincount(window_idx, minlength=n_windows)[:n_windows]
    has = np.flatnonzero(count > 0)
    n = count[has][:, None]
    # Each window's values sorted (NaN last). Where a (windows x most values in one) grid is not
    # much larger than the values, in its rows, NaN-padded: one `np.sort` along rows (the pads
    # stay after the window's own values, NaN or not), 5x faster than sorting indices.
    # Otherwise by window, then value: values sorted, then a stable sort by window (on 32-bit
    # window numbers, the faster sort; check_window_count keeps them far below 2**31).
    widest = int(count.max())
    w32 = window_idx.astype(np.int32)
    start = np.cumsum(count) - count  # each window's first place in window order
    if _use_grid(len(has), widest, len(values)):
        order = np.argsort(w32, kind="stable")
        row = np.zeros(n_windows, dtype=np.intp)
        row[has] = np.arange(len(has))
        w_sorted = window_idx[order]
        grid = np.full((len(has), widest), np.nan)
        grid[row[w_sorted], np.arange(len(values)) - start[w_sorted]] = values[order]
        grid.sort(axis=1)
        v = grid.ravel()
        first = (np.arange(len(has)) * widest)[:, None]
    else:
        order = np.argsort(values)
        order = order[np.argsort(w32[order], kind="stable")]
        v = values[order]
        first = start[has][:, None]
    rank = (n - 1) * QUANTILES  # (windows with values, 3)
    prev = np.floor(rank)
    last = rank >= n - 1
    lo = np.where(last, n - 1, prev).astype(np.intp)
    hi = np.where(last, n - 1, prev + 1).astype(np.intp)
    gamma = rank - np.where(last, -1.0, prev)
    a = v[first + lo]
    b = v[first + hi]
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in NumPy
        diff = b - a
        res = a + diff * gamma
        upper = gamma >= 0.5
        res[upper] = (b - diff * (1 - gamma))[upper]
    res[np.isnan(v[first[:, 0] + n[:, 0] - 1])] = np.nan
    out[has] = res
    return out


def _use_grid(rows: int, widest: int, n_values: int) -> bool:
    """Sort in a NaN-padded grid (`_percentiles`) when it holds at most 4x the values (or 64k
    cells): not where one window holds most values and many others a few."""
    return rows * widest <= max(4 * n_values, 1 << 16)


def _window_index(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, t, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def build_timeseries(
    edges: np.ndarray,
    *,
    arrival_s: np.ndarray,
    start_s: np.ndarray,
    first_token_s: np.ndarray,
    end_s: np.ndarray,
    status: np.ndarray,
    cost_usd: np.ndarray,
    replicas: np.ndarray,
    busy_fraction: np.ndarray,
    throttle_s: np.ndarray,
    events: dict[str, np.ndarray],
    output_tokens: np.ndarray,
    queue_wait_end_s: np.ndarray | None = None,
) -> pl.DataFrame:
    """One row per window, columns exactly `TIMESERIES_COLUMNS`; `events` holds each
    `WINDOW_EVENTS` kind's count per window (sim/engine/events.py).

    queue_len is the time-average number of requests that had arrived but not yet been admitted
    (a request preempted and re-queued counts only for its first wait: a documented approximation).
    """
    n_w = len(edges) - 1
    end_t = edges[-1]
    in_range = arrival_s <= end_t

    def hist(t: np.ndarray) -> np.ndarray:
        t = t[t <= end_t]
        return np.bincount(_window_index(t, edges), minlength=n_w)[:n_w].astype(np.int64)

    ok = status == OK
    bad = (status == FAILED) | (status == DROPPED)
    # Waiting interval: from arrival to admission, or to the end of the run if never admitted.
    wait_end = start_s if queue_wait_end_s is None else queue_wait_end_s
    wait_end = np.where(np.isnan(wait_end), np.where(np.isnan(end_s), end_t, end_s), wait_end)
    wait_end = np.minimum(wait_end, end_t)
    a = arrival_s[in_range]
    widths = np.diff(edges)
    queue_area = interval_overlap(edges, a, np.maximum(wait_end[in_range], a))
    with np.errstate(invalid="ignore", divide="ignore"):
        queue_len = np.where(widths > 0, queue_area / widths, 0.0)

    fin = ok & (end_s <= end_t)
    w_fin = _window_index(end_s[fin], edges)
    out = output_tokens[fin].astype(np.float64)
    ttft = (first_token_s - arrival_s)[fin]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (end_s[fin] - first_token_s[fin]) / (out - 1), np.nan)
    has_tpot = np.isfinite(tpot)
    latency = {
        "ttft": _percentiles(w_fin, ttft, n_w),
        "tpot": _percentiles(w_fin[has_tpot], tpot[has_tpot], n_w),
        "e2e": _percentiles(w_fin, (end_s - arrival_s)[fin], n_w),
    }
    counts = {
        "arrivals": hist(arrival_s),
        "completions": hist(end_s[fin]),
        "throttled": hist(throttle_s),
        "failed": hist(end_s[bad]),
        **events,
    }
    return timeseries_frame(edges, counts, queue_len, replicas, busy_fraction, cost_usd, latency)


def timeseries_frame(edges, counts, queue_len, replicas, busy_fraction, cost_usd, latency):
    """The `TIMESERIES_COLUMNS` table from its parts: `counts` holds the arrivals, completions,
    throttled, failed and each `WINDOW_EVENTS` kind per window; `latency` maps "ttft", "tpot"
    and "e2e" to (windows, 3) p50/p90/p99 arrays."""
    data = {
        "window_start_s": edges[:-1],
        "window_end_s": edges[1:],
        **{key: counts[key] for key in ("arrivals", "completions", "throttled", "failed")},
        **{kind: counts[kind] for kind in WINDOW_EVENTS},
        "queue_len": queue_len,
        "replicas": replicas,
        "busy_fraction": busy_fraction,
        "cost_usd": cost_usd,
        "cumulative_cost_usd": np.cumsum(cost_usd),
    }
    for metric in ("ttft", "tpot", "e2e"):
        for k, q in enumerate(("p50", "p90", "p99")):
            data[f"{metric}_{q}_s"] = latency[metric][:, k]
    assert tuple(data) == TIMESERIES_COLUMNS
    return pl.DataFrame(data)


def allocate_cost(
    edges: np.ndarray,
    window_cost_usd: np.ndarray,
    end_s: np.ndarray,
    status: np.ndarray,
    tokens: np.ndarray,
) -> np.ndarray:
    """Split each window's cost over the requests that completed in it, by prompt + output tokens.

    Cost of windows with no completion (idle time, cold starts) is spread over all completed
    requests by tokens, so the shares add up to the total. With no completed request at all, the
    cost is spread evenly over every request (and stays unallocated if there are none).
    """
    n = len(status)
    share = np.zeros(n)
    total = float(window_cost_usd.sum())
    if n == 0 or total == 0.0:
        return share
    done = (status == OK) & (end_s <= edges[-1])
    if not done.any():
        return np.full(n, total / n)
    idx = np.flatnonzero(done)
    w = _window_index(end_s[idx], edges)
    tok = tokens[idx].astype(np.float64)
    tok_per_window = np.bincount(w, weights=tok, minlength=len(window_cost_usd))
    covered = tok_per_window > 0
    rate = np.zeros(len(window_cost_usd))
    rate[covered] = window_cost_usd[covered] / tok_per_window[covered]
    share[idx] = tok * rate[w]
    leftover = total - share.sum()
    share[idx] += leftover * tok / tok.sum()
    return share
