"""Mergeable quantile sketches for latencies: fixed log-spaced bins, filled with numpy a batch at a
time.

The bins are DDSketch's logarithmic mapping (Masson, Rim and Lee, "DDSketch: a fast and fully-
mergeable quantile sketch with relative-error guarantees", VLDB 2019): with relative accuracy
`ALPHA` and gamma = (1 + ALPHA) / (1 - ALPHA), a value x > 0 falls in bin k = ceil(log_gamma x),
whose representative 2 gamma^k / (gamma + 1) is within ALPHA * x of every value in the bin. The
bins are fixed (no collapsing), so a sketch is a vector of counts and merging is addition:
windows merge into a run, runs into replications, in any order, with the same result.

Quantiles interpolate linearly between the representatives of the two order statistics around
the rank q * (n - 1), as `np.percentile` does between the exact values; so the estimate is within
ALPHA (1%) of `np.percentile(values, q * 100)` relative to it, for values in [MIN_S, MAX_S].
Values below MIN_S (1 microsecond, including zero) count as 0 (absolute error < MIN_S); values
above MAX_S (10^7 s, 116 days) count as MAX_S.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.01  # relative accuracy of every quantile (documented bound, tested)
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MIN_S = 1e-6
MAX_S = 1e7
_K_MIN = math.ceil(math.log(MIN_S) / _LOG_GAMMA)
_K_MAX = math.ceil(math.log(MAX_S) / _LOG_GAMMA)
N_BINS = _K_MAX - _K_MIN + 2  # bin 0 holds values below MIN_S; bin j >= 1 is k = _K_MIN + j - 1

# Representative value of each bin (bin 0: zero).
_K = np.arange(_K_MIN, _K_MAX + 1, dtype=np.float64)
REPRESENTATIVE = np.concatenate([[0.0], 2 * np.exp(_K * _LOG_GAMMA) / (GAMMA + 1)])


def bin_index(values: np.ndarray) -> np.ndarray:
    """Bin of each value (int32). Callers pass finite, non-negative values."""
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(x), dtype=np.int32)
    big = x >= MIN_S
    k = np.ceil(np.log(np.minimum(x[big], MAX_S)) / _LOG_GAMMA).astype(np.int64)
    out[big] = np.clip(k - _K_MIN + 1, 1, N_BINS - 1)
    return out


def counts_of(values: np.ndarray) -> np.ndarray:
    """A dense sketch (counts per bin, int64) of `values`."""
    return np.bincount(bin_index(values), minlength=N_BINS).astype(np.int64)


def quantile(counts: np.ndarray, q: float) -> float:
    """The q-quantile (q in [0, 1]) of the values a dense sketch holds; NaN when it is empty."""
    n = int(counts.sum())
    if n == 0:
        return math.nan
    rank = q * (n - 1)
    lo, frac = int(math.floor(rank)), rank - math.floor(rank)
    cum = np.cumsum(counts)
    b_lo = int(np.searchsorted(cum, lo, side="right"))
    v_lo = REPRESENTATIVE[b_lo]
    if frac == 0:
        return float(v_lo)
    b_hi = int(np.searchsorted(cum, lo + 1, side="right"))
    return float(v_lo + frac * (REPRESENTATIVE[b_hi] - v_lo))


def quantiles(counts: np.ndarray, qs) -> list[float]:
    return [quantile(counts, q) for q in qs]


class WindowSketches:
    """Sketches per time window, stored sparsely: (window * N_BINS + bin) -> count.

    Memory grows with the distinct (window, bin) pairs seen, at most windows x bins in use, not
    with the values added. `add` takes a batch; pairs are folded together every `FOLD` new ones.
    """

    FOLD = 1 << 20

    def __init__(self):
        self._keys = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._new_keys: list[np.ndarray] = []
        self._new_counts: list[np.ndarray] = []
        self._pending = 0

    def add(self, window: np.ndarray, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        keys = np.asarray(window, dtype=np.int64) * N_BINS + bin_index(values)
        uk, uc = np.unique(keys, return_counts=True)
        self._new_keys.append(uk)
        self._new_counts.append(uc.astype(np.int64))
        self._pending += len(uk)
        if self._pending >= self.FOLD:
            self._fold()

    def merge(self, other: WindowSketches) -> None:
        other._fold()
        self._new_keys.append(other._keys)
        self._new_counts.append(other._counts)
        self._fold()

    def _fold(self) -> None:
        if not self._new_keys:
            return
        keys = np.concatenate([self._keys, *self._new_keys])
        counts = np.concatenate([self._counts, *self._new_counts])
        self._keys, inverse = np.unique(keys, return_inverse=True)
        self._counts = np.bincount(inverse, weights=counts).astype(np.int64)
        self._new_keys, self._new_counts, self._pending = [], [], 0

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + self._counts.nbytes

    def total(self) -> np.ndarray:
        """One dense sketch of every window together."""
        self._fold()
        return np.bincount(self._keys % N_BINS, weights=self._counts, minlength=N_BINS).astype(
            np.int64
        )

    def window_quantiles(self, n_windows: int, qs) -> np.ndarray:
        """(n_windows, len(qs)) quantiles per window, NaN for windows with no value."""
        self._fold()
        out = np.full((n_windows, len(qs)), np.nan)
        if not len(self._keys):
            return out
        window = self._keys // N_BINS
        bins = self._keys % N_BINS
        bounds = np.searchsorted(window, np.arange(n_windows + 1))
        dense = np.zeros(N_BINS, dtype=np.int64)
        for w in np.flatnonzero(np.diff(bounds)):
            a, b = bounds[w], bounds[w + 1]
            dense[:] = 0
            dense[bins[a:b]] = self._counts[a:b]
            out[w] = quantiles(dense, qs)
        return out
