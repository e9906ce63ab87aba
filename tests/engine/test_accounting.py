"""The per-window latency percentiles of the time series (sim/engine/accounting.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import sim.engine.accounting as accounting
from sim.engine.accounting import _percentiles


def per_window_numpy(window_idx, values, n_windows):
    """The reference: np.percentile once per window."""
    out = np.full((n_windows, 3), np.nan)
    with np.errstate(invalid="ignore"):
        for k in range(n_windows):
            v = values[window_idx == k]
            if len(v):
                out[k] = np.percentile(v, [50, 90, 99])
    return out


values = st.one_of(
    st.floats(0.0, 1e4, allow_nan=False),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.125, 1.0, 2.5]),  # ties
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n_w: st.tuples(
            st.just(n_w),
            st.lists(st.tuples(st.integers(0, n_w - 1), values), max_size=400),
        )
    )
)
@example((3, [(1, float("nan")), (1, 1.0), (2, float("inf")), (2, 1.0)]))
@example((2, [(0, -float("inf")), (0, float("inf"))]))
def test_all_windows_at_once_equal_np_percentile_per_window_bit_for_bit(case):
    n_w, pairs = case
    idx = np.array([w for w, _ in pairs], dtype=np.int64)
    v = np.array([x for _, x in pairs], dtype=np.float64)
    want = per_window_numpy(idx, v, n_w)
    use_grid = accounting._use_grid
    try:
        for grid in (True, False):  # both ways of sorting each window's values
            accounting._use_grid = lambda *_, grid=grid: grid
            got = _percentiles(idx, v, n_w)
            assert got.shape == want.shape
            # NaN where NumPy gives NaN, and every other float the same down to its bits
            # (0.0 vs -0.0).
            nan = np.isnan(want)
            assert np.array_equal(np.isnan(got), nan), (grid, got, want)
            assert np.array_equal(got[~nan].view(np.int64), want[~nan].view(np.int64)), (
                grid,
                got,
                want,
            )
    finally:
        accounting._use_grid = use_grid


def test_large_windows_match_and_empty_windows_are_nan():
    rng = np.random.default_rng(3)
    idx = np.sort(rng.integers(0, 50, 200_000))
    idx[idx == 17] = 18  # window 17 stays empty
    v = rng.lognormal(0.0, 1.5, len(idx))
    got = _percentiles(idx, v, 50)
    assert np.array_equal(got, per_window_numpy(idx, v, 50), equal_nan=True)
    assert np.isnan(got[17]).all()


def test_one_crowded_window_among_many_small_ones_sorts_without_the_grid():
    rng = np.random.default_rng(4)
    idx = np.concatenate([np.arange(2000), np.full(40_000, 2000)])
    rng.shuffle(idx)
    v = rng.lognormal(0.0, 1.0, len(idx))
    assert not accounting._use_grid(2001, 40_001, len(v))
    got = _percentiles(idx, v, 2001)
    assert np.array_equal(got, per_window_numpy(idx, v, 2001), equal_nan=True)
