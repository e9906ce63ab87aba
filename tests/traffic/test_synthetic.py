"""Synthetic generators against theory, under fixed seeds; tolerances are stated beside each."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.traffic import (
    IndependentLengths,
    LognormalLengths,
    ResampleLengths,
    diurnal,
    gamma_arrivals,
    mmpp,
    poisson,
    trace_stats,
)
from sim.traffic.synthetic import diurnal_envelope

LENGTHS = IndependentLengths(LognormalLengths(1020, 0.8, 8192), LognormalLengths(129, 1.0, 2048))


def rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def gaps_cv(arrival_s: np.ndarray) -> float:
    gaps = np.diff(arrival_s)
    return float(gaps.std() / gaps.mean())


def test_poisson_rate_and_cv():
    rate, duration = 10.0, 10_000.0
    w = poisson(rate, duration, LENGTHS, rng())
    n = len(w)
    # Count ~ Poisson(1e5): sd = 316; allow 4 sd.
    assert abs(n - rate * duration) < 4 * math.sqrt(rate * duration)
    # Exponential gaps: CV = 1 with standard error ~ 1/sqrt(n) (delta method); allow 4 SE.
    assert abs(gaps_cv(w.arrival_s) - 1.0) < 4 / math.sqrt(n)
    assert w.arrival_s[0] >= 0 and w.arrival_s[-1] < duration
    assert np.all(np.diff(w.arrival_s) >= 0)


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_cv(cv):
    rate, duration = 10.0, 20_000.0
    w = gamma_arrivals(rate, cv, duration, LENGTHS, rng(11))
    n = len(w)
    # Delta-method variance of the sample CV: CV^2 * [(kurtosis - 1)/4 + CV^2 - skew * CV] / n;
    # for Gamma(k = 1/cv^2) gaps kurtosis = 3 + 6 cv^2 and skew = 2 cv (gives 1/n at cv = 1).
    var = cv**2 * ((2 + 6 * cv**2) / 4 + cv**2 - 2 * cv * cv) / n
    assert abs(gaps_cv(w.arrival_s) - cv) < 4 * math.sqrt(var)
    # Mean rate: a renewal count over 2e5 expected arrivals, sd ~ cv * sqrt(n).
    assert abs(n - rate * duration) < 4 * cv * math.sqrt(rate * duration)


def test_diurnal_peak_to_trough():
    mean_rate = 5.0
    w = diurnal(mean_rate, 86_400.0, LENGTHS, rng(3), peak_to_trough=3.0, peak_hour=14.0)
    # Over a whole day the rate averages mean_rate: 432,000 expected, Poisson sd 657.
    assert abs(len(w) - mean_rate * 86_400) < 4 * math.sqrt(mean_rate * 86_400)
    # Hour centred on 14:00 vs hour centred on 02:00. amplitude a = (3-1)/(3+1) = 0.5; averaged
    # over an hour the cosine is sin(pi/24)/(pi/24) = 0.99715, so the expected ratio is
    # (1 + 0.5*0.99715) / (1 - 0.5*0.99715) = 2.989. Counts ~27,000 and ~9,000: ratio SE 0.037.
    peak = np.sum((w.arrival_s >= 13.5 * 3600) & (w.arrival_s < 14.5 * 3600))
    trough = np.sum((w.arrival_s >= 1.5 * 3600) & (w.arrival_s < 2.5 * 3600))
    assert peak / trough == pytest.approx(2.989, abs=4 * 0.037)


def test_mmpp_mean_rate_and_burstiness():
    # Two alternating states: 2/s for 600 s on average, 20/s for 60 s. Time-average rate
    # (2*600 + 20*60) / 660 = 3.636/s. About 300 cycles: the count's sd is ~4% (dwell variance).
    w = mmpp([2.0, 20.0], [600.0, 60.0], 200_000.0, LENGTHS, rng(5))
    expected = (2 * 600 + 20 * 60) / 660 * 200_000
    assert len(w) == pytest.approx(expected, rel=0.12)
    # Modulation makes per-minute counts over-dispersed (Poisson would give Fano = 1).
    assert trace_stats(w)["fano_60s"] > 5
    assert w.meta["state_changes"] > 100


def test_single_state_mmpp_is_poisson():
    w = mmpp([4.0], [100.0], 20_000.0, LENGTHS, rng(9))
    assert abs(len(w) - 80_000) < 4 * math.sqrt(80_000)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: poisson(3.0, 500.0, LENGTHS, g),
        lambda g: gamma_arrivals(3.0, 2.0, 500.0, LENGTHS, g),
        lambda g: diurnal(3.0, 500.0, LENGTHS, g),
        lambda g: mmpp([1.0, 9.0], [50.0, 10.0], 500.0, LENGTHS, g),
    ],
)
def test_same_seed_same_arrays(make):
    a, b, c = make(rng(42)), make(rng(42)), make(rng(43))
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    np.testing.assert_array_equal(a.prompt_tokens, b.prompt_tokens)
    np.testing.assert_array_equal(a.output_tokens, b.output_tokens)
    assert len(a) != len(c) or not np.array_equal(a.arrival_s, c.arrival_s)


def test_lognormal_lengths_median_and_cap():
    dist = LognormalLengths(1020, 0.8, 8192)
    draws = dist.draw(200_000, rng())
    # Median of exp(N) is the median parameter; SE of a sample median ~ 1.2533*sigma_x/sqrt(n)
    # on the log scale: 1.2533*0.8/447 = 0.0022 -> ~0.3% of 1020.
    assert np.median(draws) == pytest.approx(1020, rel=0.01)
    assert draws.max() <= 8192 and draws.min() >= 1
    assert repr(dist) == "Lognormal(median=1020, sigma=0.8, max=8192)"


def test_lognormal_fit_recovers_parameters():
    draws = np.exp(np.log(129) + 1.0 * rng(1).standard_normal(100_000))
    fitted = LognormalLengths.fit(np.maximum(np.rint(draws), 1).astype(np.int64))
    assert fitted.median == pytest.approx(129, rel=0.02)
    assert fitted.sigma == pytest.approx(1.0, abs=0.02)


def test_lognormal_rejects_bad_parameters():
    with pytest.raises(ValueError, match="sigma must be 0 to 10, got -1"):
        LognormalLengths(100, -1, 1000)
    with pytest.raises(ValueError, match="sigma must be 0 to 10, got 1e"):
        LognormalLengths(100, 1e6, 1000)
    with pytest.raises(ValueError, match="median must be 1 to 10,000,000 tokens, got 1e"):
        LognormalLengths(1e20, 0, 1e20)


def test_resample_keeps_pairs():
    prompt = np.array([10, 2000, 300])
    output = np.array([1, 2, 3])
    p, o = ResampleLengths(prompt, output).sample(1000, rng())
    pairs = set(zip(p.tolist(), o.tolist(), strict=True))
    assert pairs <= {(10, 1), (2000, 2), (300, 3)} and len(pairs) == 3


def test_bad_generator_parameters():
    with pytest.raises(ValueError, match="rate_per_s must be a positive number"):
        poisson(0, 10, LENGTHS, rng())
    with pytest.raises(ValueError, match="equally long"):
        mmpp([1.0, 2.0], [10.0], 10, LENGTHS, rng())


@settings(max_examples=50, deadline=None)
@given(st.floats(1.0, 100.0), st.floats(0.0, 24.0), st.lists(st.floats(0, 1e6), max_size=50))
def test_diurnal_envelope_between_trough_and_one(ratio, peak_hour, times):
    env = diurnal_envelope(np.array(times), ratio, 86_400.0, peak_hour)
    assert np.all(env <= 1 + 1e-12) and np.all(env >= 1 / ratio - 1e-12)
    assert diurnal_envelope(np.array([peak_hour * 3600]), ratio, 86_400.0, peak_hour)[0] == pytest.approx(1.0)  # fmt: skip
