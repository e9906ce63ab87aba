"""GPU busy seconds per window: the deferred, vectorised spreading must give exactly the floats of
adding each interval to its windows one call at a time (the engine's original loop)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.accounting import WindowSums


def one_at_a_time(intervals, window_s, weight, n_windows):
    values: list[float] = []
    for t0, t1 in intervals:
        k0, k1 = int(t0 // window_s), int(t1 // window_s)
        if k1 >= len(values):
            values.extend([0.0] * (k1 + 1 - len(values)))
        if k0 == k1:
            values[k0] += (t1 - t0) * weight
            continue
        values[k0] += ((k0 + 1) * window_s - t0) * weight
        for k in range(k0 + 1, k1):
            values[k] += window_s * weight
        values[k1] += (t1 - k1 * window_s) * weight
    out = np.zeros(n_windows)
    m = min(n_windows, len(values))
    out[:m] = values[:m]
    return out


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
def test_window_sums_equal_the_one_at_a_time_loop(chunk, monkeypatch):
    monkeypatch.setattr(WindowSums, "CHUNK", chunk)
    rng = np.random.default_rng(11)
    for _ in range(100):
        window_s = float(rng.choice([60.0, 30.0, 1.0, 7.3, 0.1]))
        weight = int(rng.choice([1, 4, 8]))
        n = int(rng.integers(1, 300))
        t0 = np.sort(rng.uniform(0, 3000, n))
        t1 = t0 + rng.exponential(float(rng.choice([0.01, 5.0, 200.0])), n)
        intervals = list(zip(t0.tolist(), t1.tolist(), strict=True))
        sums = WindowSums(window_s, weight)
        for a, b in intervals:
            sums.add_interval(a, b)
        n_windows = int(rng.integers(1, 4000))
        expected = one_at_a_time(intervals, window_s, weight, n_windows)
        assert np.array_equal(sums.array(n_windows), expected)


def test_no_interval_is_all_zero():
    assert np.array_equal(WindowSums(60.0, 4).array(3), np.zeros(3))
