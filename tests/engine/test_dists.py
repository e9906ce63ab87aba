"""Distribution samplers built from config DistSpecs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.engine.config import DistSpec
from sim.engine.dists import Const, Exponential, LogNormal, TruncatedNormal, Uniform, from_spec


def test_means_and_samples():
    rng = np.random.default_rng(0)
    assert from_spec(DistSpec("const", value=2.5)).sample(rng) == 2.5
    ln = from_spec(DistSpec("lognormal", median=0.5, sigma=0.4))
    assert isinstance(ln, LogNormal) and ln.mean == pytest.approx(0.5 * math.exp(0.08))
    draws = ln.sample(rng, 200_000)
    assert np.median(draws) == pytest.approx(0.5, rel=0.01)
    u = from_spec(DistSpec("uniform", low=1.0, high=3.0))
    assert isinstance(u, Uniform) and u.mean == 2.0
    n = from_spec(DistSpec("normal", mean=1.0, std=5.0))
    assert isinstance(n, TruncatedNormal) and (n.sample(rng, 10_000) >= 0).all()
    assert isinstance(from_spec(3), Const) and from_spec(3).mean == 3.0
    assert repr(ln) == "LogNormal(median=0.5, sigma=0.4)"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: Exponential(-1.0), "Exponential mean must be a positive number"),
        (lambda: LogNormal(0.0, 0.3), "LogNormal median must be a positive number"),
        (lambda: Uniform(3.0, 1.0), "Uniform high"),
    ],
)
def test_bad_sampler_parameters_fail_with_a_sentence(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "params,field",
    [
        ({"dist": "exponential", "mean": -1.0}, "mean"),
        ({"dist": "lognormal", "sigma": 0.3}, "median"),
        ({"dist": "uniform", "low": 3.0, "high": 1.0}, "low"),
        ({"dist": "gamma", "mean": 1.0}, "dist"),
    ],
)
def test_bad_specs_are_refused_by_the_schema(params, field):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        DistSpec(**params)
