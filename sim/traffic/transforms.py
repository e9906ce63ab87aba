"""Reshape a Workload: cut a time window, change its rate, stretch it, tile it over a day, sample.

Each transform is pure and returns a new Workload; the random ones draw from the given Generator.
Requests keep their own token counts (and prefix-cache hits), so token distributions are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from sim.traffic import limits
from sim.traffic.synthetic import diurnal_envelope
from sim.workload import Workload


def _take(w: Workload, idx: np.ndarray, arrival_s: np.ndarray, note: str) -> Workload:
    """Workload of requests `idx` of `w` (in that order) at new arrival times."""
    order = np.argsort(arrival_s, kind="stable")
    idx = np.asarray(idx, dtype=np.int64)[order]
    arrival_s = np.asarray(arrival_s, dtype=np.float64)[order]
    meta = dict(w.meta)
    if "hash_ids" in meta:
        meta["hash_ids"] = _take_ragged(*meta["hash_ids"], idx)
    meta["transforms"] = [*meta.get("transforms", []), note]
    return Workload(
        arrival_s=arrival_s,
        prompt_tokens=w.prompt_tokens[idx],
        output_tokens=w.output_tokens[idx],
        cached_prompt_tokens=w.cached_prompt_tokens[idx],
        name=w.name,
        meta=meta,
    )


def _take_ragged(offsets: np.ndarray, values: np.ndarray, idx: np.ndarray):
    """Rows `idx` of a ragged array stored as (offsets, values)."""
    lengths = offsets[idx + 1] - offsets[idx]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = np.repeat(offsets[idx] - new_offsets[:-1], lengths)
    return new_offsets, values[starts + np.arange(new_offsets[-1])]


def window(w: Workload, start_s: float, end_s: float) -> Workload:
    """Requests arriving in [start_s, end_s), with times rebased so start_s becomes 0."""
    if not end_s > start_s >= 0:
        raise ValueError(f"window needs 0 <= start_s < end_s, got [{start_s}, {end_s})")
    lo, hi = np.searchsorted(w.arrival_s, [start_s, end_s], side="left")
    idx = np.arange(lo, hi)
    return _take(w, idx, w.arrival_s[idx] - start_s, f"window({start_s:g}, {end_s:g})")


def scale_rate(w: Workload, factor: float, rng: np.random.Generator) -> Workload:
    """Multiply the arrival rate by `factor`, keeping the time span and the traffic shape.

    factor < 1 keeps each request with probability `factor` (Bernoulli thinning). factor > 1
    keeps every request and adds floor(factor) - 1 copies plus one more with probability
    frac(factor); a copy arrives uniformly between its original and the next arrival, so bursts
    stay bursts and copies never leave the trace's span.
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"rate scale factor must be positive, got {factor}")
    n = len(w)
    note = f"scale_rate({factor:g})"
    limits.check_requests(
        n * factor, f"rate_scale {factor:g} on {n:,} requests", limits.MAX_REQUESTS
    )
    if factor <= 1:
        idx = np.flatnonzero(rng.random(n) < factor)
        return _take(w, idx, w.arrival_s[idx], note)
    copies = np.full(n, int(math.floor(factor)) - 1, dtype=np.int64)
    copies += rng.random(n) < (factor - math.floor(factor))
    extra_idx = np.repeat(np.arange(n), copies)
    gaps = np.diff(w.arrival_s, append=w.arrival_s[-1] if n else 0.0)
    extra_s = w.arrival_s[extra_idx] + rng.random(len(extra_idx)) * gaps[extra_idx]
    idx = np.concatenate([np.arange(n), extra_idx])
    return _take(w, idx, np.concatenate([w.arrival_s, extra_s]), note)


def stretch(w: Workload, factor: float) -> Workload:
    """Multiply every inter-arrival time (and so the span) by `factor`; factor 2 halves the rate."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"stretch factor must be positive, got {factor}")
    limits.check_span(w.duration_s * factor, f"a span of {w.duration_s:g} s stretched {factor:g}x")
    return _take(w, np.arange(len(w)), w.arrival_s * factor, f"stretch({factor:g})")


def tile_diurnal(
    w: Workload,
    duration_s: float,
    rng: np.random.Generator,
    *,
    peak_to_trough: float = 3.0,
    peak_hour: float = 14.0,
) -> Workload:
    """Repeat a short trace back to back over `duration_s`, thinned by a 24 h sinusoid.

    The trace's own rate becomes the peak rate (it is treated as peak-hour traffic); the
    trough is peak / peak_to_trough, and t = 0 is midnight. Scale the rate first if the trace
    should be the daily mean instead.
    """
    if len(w) == 0:
        return w
    (whole,) = tile_diurnal_chunks(
        w, duration_s, rng, peak_to_trough=peak_to_trough, peak_hour=peak_hour
    )
    return whole


def tile_diurnal_chunks(
    w: Workload,
    duration_s: float,
    rng: np.random.Generator,
    *,
    peak_to_trough: float = 3.0,
    peak_hour: float = 14.0,
    tiles_per_chunk: int | None = None,
) -> Iterator[Workload]:
    """`tile_diurnal` in pieces of `tiles_per_chunk` tiles (default: all in one), for a run that
    reads its workload as it goes: the pieces, concatenated, are `tile_diurnal`'s workload (the
    same draws from `rng`, in the same order)."""
    if not duration_s > 0:
        raise ValueError(f"tile duration must be positive, got {duration_s}")
    limits.check_span(duration_s, "tile_to_s")
    if not peak_to_trough >= 1:
        raise ValueError(f"peak_to_trough must be at least 1, got {peak_to_trough}")
    # One tile is the trace plus one mean gap, so the seam looks like any other gap.
    period_s = w.duration_s * (1 + 1 / max(len(w) - 1, 1))
    tiles = math.ceil(duration_s / period_s) if period_s > 0 else math.inf
    limits.check_requests(
        tiles * len(w),
        f"tiling a {w.duration_s:g} s trace of {len(w):,} requests to {duration_s:g} s",
        limits.MAX_REQUESTS,
        hint="window or sample it first",
    )
    note = f"tile_diurnal({duration_s:g}s, peak/trough={peak_to_trough:g}, peak={peak_hour:g}h)"
    step = tiles if tiles_per_chunk is None else max(1, int(tiles_per_chunk))
    for first in range(0, tiles, step):
        k = np.arange(first, min(first + step, tiles))
        idx = np.tile(np.arange(len(w)), len(k))
        arrival_s = (w.arrival_s[None, :] + period_s * k[:, None]).ravel()
        inside = arrival_s < duration_s
        idx, arrival_s = idx[inside], arrival_s[inside]
        keep = rng.random(len(arrival_s)) < diurnal_envelope(
            arrival_s, peak_to_trough, 86400.0, peak_hour
        )
        yield _take(w, idx[keep], arrival_s[keep], note)


def sample(w: Workload, n_or_frac, rng: np.random.Generator) -> Workload:
    """A uniform random subset without replacement: an int is a count, a float in (0, 1] a share."""
    n = len(w)
    if isinstance(n_or_frac, bool):
        raise ValueError("sample size must be a count or a fraction, not a boolean")
    if isinstance(n_or_frac, int | np.integer):
        if n_or_frac < 0:
            raise ValueError(f"sample count must be non-negative, got {n_or_frac}")
        k = min(int(n_or_frac), n)
    else:
        if not 0 < n_or_frac <= 1:
            raise ValueError(f"sample fraction must be in (0, 1], got {n_or_frac}")
        k = int(round(n * float(n_or_frac)))
    idx = np.sort(rng.choice(n, size=k, replace=False)) if k else np.empty(0, dtype=np.int64)
    return _take(w, idx, w.arrival_s[idx], f"sample({n_or_frac})")


def truncate(w: Workload, max_requests: int) -> Workload:
    """The first `max_requests` requests."""
    if max_requests < 0:
        raise ValueError(f"max_requests must be non-negative, got {max_requests}")
    idx = np.arange(min(int(max_requests), len(w)))
    return _take(w, idx, w.arrival_s[idx], f"truncate({max_requests})")
