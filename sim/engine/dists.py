"""Samplers for the positive random quantities in fleet configs (latencies, speeds, cold starts).

Each is a tiny class with `sample(rng, size=None)`, `mean` and a readable `__repr__`; bad parameters
fail in the constructor with a sentence. `from_spec` turns a config `DistSpec` into one of them.
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.config import DistSpec


class Dist:
    """A non-negative random quantity drawn with a caller-supplied `numpy.random.Generator`."""

    mean: float

    def sample(self, rng: np.random.Generator, size: int | None = None):
        raise NotImplementedError


def _positive(name: str, what: str, value: float | None) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} {what} must be a positive number, got {value!r}")
    return float(value)


def _non_negative(name: str, what: str, value: float | None) -> float:
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} {what} must be a non-negative number, got {value!r}")
    return float(value)


class Const(Dist):
    def __init__(self, value: float):
        self.value = _non_negative("Const", "value", value)
        self.mean = self.value

    def sample(self, rng, size=None):
        return self.value if size is None else np.full(size, self.value)

    def __repr__(self) -> str:
        return f"Const({self.value:g})"


class Exponential(Dist):
    def __init__(self, mean: float):
        self.mean = _positive("Exponential", "mean", mean)

    def sample(self, rng, size=None):
        return rng.exponential(self.mean, size)

    def __repr__(self) -> str:
        return f"Exponential(mean={self.mean:g})"


class LogNormal(Dist):
    """Parametrised by the median (exp(mu)) and sigma of the underlying normal."""

    def __init__(self, median: float, sigma: float):
        self.median = _positive("LogNormal", "median", median)
        self.sigma = _non_negative("LogNormal", "sigma", sigma)
        self.mean = self.median * math.exp(self.sigma**2 / 2)

    def sample(self, rng, size=None):
        return rng.lognormal(math.log(self.median), self.sigma, size)

    def __repr__(self) -> str:
        return f"LogNormal(median={self.median:g}, sigma={self.sigma:g})"


class Uniform(Dist):
    def __init__(self, low: float, high: float):
        self.low = _non_negative("Uniform", "low", low)
        self.high = _non_negative("Uniform", "high", high)
        if self.high < self.low:
            raise ValueError(f"Uniform high ({high}) must not be below low ({low})")
        self.mean = (self.low + self.high) / 2

    def sample(self, rng, size=None):
        return rng.uniform(self.low, self.high, size)

    def __repr__(self) -> str:
        return f"Uniform({self.low:g}, {self.high:g})"


class TruncatedNormal(Dist):
    """A normal clipped at 0: a cold start can be short but never negative.

    `mean` is the untruncated mean; with std well below mean (the intended use) they agree.
    """

    def __init__(self, mean: float, std: float):
        self.mean = _non_negative("Normal", "mean", mean)
        self.std = _non_negative("Normal", "std", std)

    def sample(self, rng, size=None):
        draw = rng.normal(self.mean, self.std, size)
        return max(draw, 0.0) if size is None else np.maximum(draw, 0.0)

    def __repr__(self) -> str:
        return f"Normal(mean={self.mean:g}, std={self.std:g}, >=0)"


def from_spec(spec: DistSpec | Dist | float | int, field: str = "dist") -> Dist:
    """Build a sampler from a config `DistSpec` (a bare number means a constant)."""
    if isinstance(spec, Dist):
        return spec
    if isinstance(spec, int | float):
        return Const(float(spec))
    kind = spec.dist
    try:
        if kind == "const":
            return Const(spec.value)
        if kind == "exponential":
            return Exponential(spec.mean)
        if kind == "lognormal":
            return LogNormal(spec.median, spec.sigma if spec.sigma is not None else 0.0)
        if kind == "uniform":
            return Uniform(spec.low, spec.high)
        if kind == "normal":
            return TruncatedNormal(spec.mean, spec.std if spec.std is not None else 0.0)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None
    raise ValueError(
        f"{field}: unknown dist {kind!r}; use const, exponential, lognormal, uniform or normal"
    )
