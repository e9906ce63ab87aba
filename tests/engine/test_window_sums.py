"""Seconds per window: the vectorised spreading of arrays (`WindowSums`) and the replica's
running sums (`BusySums`, in both builds) must give exactly the floats of adding each interval to
its windows one call at a time (the engine's original loop)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import native
from sim.engine import replica as python_replica
from sim.engine.accounting import WindowSums
from sim.errors import InputError

BUILDS = [python_replica] + ([native.compiled_replica] if native.compiled_replica else [])


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
        # In batches of random sizes, each spread `chunk` intervals at a time.
        cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 4))))
        for a, b in zip([0, *cuts], [*cuts, n], strict=True):
            sums.add_intervals(t0[a:b], t1[a:b])
        n_windows = int(rng.integers(1, 4000))
        expected = one_at_a_time(intervals, window_s, weight, n_windows)
        assert np.array_equal(sums.array(n_windows), expected)


def test_no_interval_is_all_zero():
    assert np.array_equal(WindowSums(60.0, 4).array(3), np.zeros(3))


def random_cases(seed: int, n_cases: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        window_s = float(rng.choice([60.0, 30.0, 1.0, 7.3, 0.1, 0.3]))
        weight = float(rng.choice([1, 4, 8, 2.5]))
        n = int(rng.integers(1, 300))
        t0 = np.sort(rng.uniform(0, 3000, n))
        t1 = t0 + rng.exponential(float(rng.choice([0.01, 5.0, 200.0])), n)
        # Times on window edges and their neighbours, where t // w and floor(t / w) may differ.
        edge = rng.integers(0, 3000, n) * window_s
        on_edge = rng.random(n) < 0.2
        t0 = np.where(on_edge, np.nextafter(edge, edge + rng.choice([-1.0, 1.0], n)), t0)
        t0 = np.maximum(t0, 0.0)
        t1 = np.maximum(t1, t0)
        yield window_s, weight, list(zip(t0.tolist(), t1.tolist(), strict=True))


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_busy_sums_equal_window_sums_in_either_build(build):
    for window_s, weight, intervals in random_cases(12, 150):
        busy = build.BusySums(window_s, weight)
        sums = WindowSums(window_s, weight)
        for a, b in intervals:
            busy.add(a, b)
        sums.add_intervals(*np.array(intervals).T)
        n_windows = int(max(b for _, b in intervals) // window_s) + 3
        assert np.array_equal(busy.array(n_windows), sums.array(n_windows))
        assert np.array_equal(busy.array(1), sums.array(1))  # fewer windows than held


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_floor_division_is_pythons_in_either_build(build):
    assert 1.0 // 0.1 == 9.0  # floor(1.0 / 0.1) is 10.0
    assert build._floordiv(1.0, 0.1) == 9.0
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(0, 1e6, 20_000), rng.integers(0, 10_000, 20_000) * 0.1])
    for w in (60.0, 0.1, 7.3, 1e-3, 1.0):
        for x in a.tolist():
            assert build._floordiv(x, w) == x // w


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_busy_sums_refuse_too_many_windows_before_allocating(build):
    busy = build.BusySums(1e-300)
    with pytest.raises(InputError, match="over the limit"):
        busy.add(0.0, 1.0)
    assert np.array_equal(build.BusySums(60.0, 4).array(3), np.zeros(3))
