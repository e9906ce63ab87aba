"""Transforms: exact behaviour on small hand-built workloads, properties under hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.traffic import (
    load_trace,
    resolve_trace_path,
    sample,
    scale_rate,
    stretch,
    tile_diurnal,
    trace_stats,
    truncate,
    window,
)
from sim.workload import Workload


def make(arrival_s, prompt=None, meta=None) -> Workload:
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    n = len(arrival_s)
    prompt = np.arange(1, n + 1) if prompt is None else np.asarray(prompt)
    return Workload(arrival_s, prompt.astype(np.int64), np.full(n, 7, np.int64), meta=meta or {})


workloads = st.lists(
    st.floats(0, 1e5, allow_nan=False, allow_infinity=False), min_size=0, max_size=200
).map(lambda xs: make(sorted(xs)))
seeds = st.integers(0, 2**32 - 1)


def sorted_non_negative(w: Workload) -> bool:
    return bool(np.all(np.diff(w.arrival_s) >= 0) and np.all(w.arrival_s >= 0))


def test_window_rebases_and_is_half_open():
    w = window(make([0.0, 1.0, 2.0, 3.0, 4.0]), 1.0, 3.0)
    assert w.arrival_s.tolist() == [0.0, 1.0]
    assert w.prompt_tokens.tolist() == [2, 3]
    assert w.meta["transforms"] == ["window(1, 3)"]


def test_stretch_exact():
    w = stretch(make([0.0, 1.0, 3.0]), 2.5)
    assert w.arrival_s.tolist() == [0.0, 2.5, 7.5]


def test_hash_ids_follow_their_requests():
    offsets = np.array([0, 2, 3, 6])
    values = np.array([10, 11, 20, 30, 31, 32])
    w = make([0.0, 1.0, 2.0], meta={"hash_ids": (offsets, values)})
    out = window(w, 0.5, 3.0)
    new_offsets, new_values = out.meta["hash_ids"]
    assert new_offsets.tolist() == [0, 1, 4]
    assert new_values.tolist() == [20, 30, 31, 32]


def test_scale_rate_up_keeps_span_and_tokens():
    conv = load_trace(resolve_trace_path("builtin:azure2023_conv"))
    up = scale_rate(conv, 2.5, np.random.default_rng(1))
    # floor part gives exactly 2n; the 0.5 extra copy is Binomial(n, 0.5): sd = sqrt(n)/2 = 70.
    n = len(conv)
    assert abs(len(up) - 2.5 * n) < 4 * math.sqrt(n) / 2
    assert up.duration_s == conv.duration_s
    # Copies reuse requests, so the token distribution is the original's (mean within 2%).
    assert up.prompt_tokens.mean() == pytest.approx(conv.prompt_tokens.mean(), rel=0.02)
    assert trace_stats(up)["mean_rate_per_s"] == pytest.approx(2.5 * 5.53, rel=0.01)


def test_tile_diurnal_over_a_day():
    conv = load_trace(resolve_trace_path("builtin:azure2023_conv"))
    day = tile_diurnal(conv, 86_400.0, np.random.default_rng(2), peak_to_trough=3.0, peak_hour=14)
    assert day.duration_s < 86_400.0 and sorted_non_negative(day)
    # Trace rate (5.53/s) is the peak; the envelope averages 1/(1 + a) = 2/3 of it (a = 0.5).
    assert len(day) == pytest.approx(conv_rate(conv) * 86_400 * 2 / 3, rel=0.02)
    peak = np.sum((day.arrival_s >= 13.5 * 3600) & (day.arrival_s < 14.5 * 3600))
    trough = np.sum((day.arrival_s >= 1.5 * 3600) & (day.arrival_s < 2.5 * 3600))
    # Expected 2.989 (hour-averaged sinusoid, see test_synthetic); counts ~20k / ~6.6k.
    assert peak / trough == pytest.approx(2.989, abs=0.2)


def conv_rate(w: Workload) -> float:
    return len(w) / (w.duration_s * (1 + 1 / (len(w) - 1)))


def test_tile_refuses_a_zero_length_trace():
    with pytest.raises(ValueError, match="window or sample it first"):
        tile_diurnal(make([0.0]), 86_400.0, np.random.default_rng(0))


def test_sample_count_and_fraction():
    w = make(np.arange(100.0))
    assert len(sample(w, 30, np.random.default_rng(0))) == 30
    assert len(sample(w, 0.25, np.random.default_rng(0))) == 25
    with pytest.raises(ValueError, match="fraction must be in"):
        sample(w, 1.5, np.random.default_rng(0))


def test_truncate():
    assert truncate(make([0.0, 1.0, 2.0]), 2).arrival_s.tolist() == [0.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(workloads, st.floats(0.01, 1.0), seeds)
def test_thinning_never_adds(w, factor, seed):
    out = scale_rate(w, factor, np.random.default_rng(seed))
    assert len(out) <= len(w)
    assert sorted_non_negative(out)
    assert set(out.prompt_tokens.tolist()) <= set(w.prompt_tokens.tolist())


@settings(max_examples=60, deadline=None)
@given(workloads, st.floats(1.0, 5.0), seeds)
def test_replication_bounds(w, factor, seed):
    out = scale_rate(w, factor, np.random.default_rng(seed))
    assert math.floor(factor) * len(w) <= len(out) <= math.ceil(factor) * len(w)
    assert sorted_non_negative(out)
    if len(w):
        assert out.arrival_s[0] >= w.arrival_s[0] and out.arrival_s[-1] <= w.arrival_s[-1]


@settings(max_examples=60, deadline=None)
@given(workloads, st.floats(0.01, 100.0))
def test_stretch_scales_span_exactly(w, factor):
    out = stretch(w, factor)
    assert len(out) == len(w)
    np.testing.assert_allclose(np.diff(out.arrival_s), np.diff(w.arrival_s) * factor, rtol=1e-12, atol=1e-9)  # fmt: skip
    assert out.duration_s == pytest.approx(w.duration_s * factor, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(workloads, st.floats(0, 5e4), st.floats(1, 5e4))
def test_window_contents(w, start, length):
    out = window(w, start, start + length)
    inside = (w.arrival_s >= start) & (w.arrival_s < start + length)
    assert len(out) == int(inside.sum())
    assert sorted_non_negative(out)
    assert np.all(out.arrival_s < length)


@settings(max_examples=40, deadline=None)
@given(workloads.filter(lambda w: w.duration_s >= 1), st.floats(10, 2e5), seeds)
def test_tile_stays_in_duration(w, duration, seed):
    out = tile_diurnal(w, duration, np.random.default_rng(seed))
    assert sorted_non_negative(out)
    assert len(out) == 0 or out.arrival_s[-1] < duration


@settings(max_examples=40, deadline=None)
@given(workloads, st.floats(0.01, 1.0), seeds)
def test_sample_is_a_subset(w, frac, seed):
    out = sample(w, frac, np.random.default_rng(seed))
    assert len(out) == round(len(w) * frac)
    assert set(out.arrival_s.tolist()) <= set(w.arrival_s.tolist())
    assert sorted_non_negative(out)
