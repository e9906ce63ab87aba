"""Statistics over replications: Student-t 95% intervals and percentiles that ignore NaNs."""

from __future__ import annotations

import math
import statistics

import numpy as np

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (standard tables); scipy is only
# a test dependency, and tests check this table against scipy.stats.t.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(df: int) -> float:
    """Two-sided 95% t quantile; beyond the table a Cornish-Fisher expansion (error < 1e-3)."""
    if df < 1:
        return math.nan
    if df <= len(_T95):
        return _T95[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def mean_ci(values) -> tuple[float | None, tuple[float, float] | None, tuple[float | None, ...]]:
    """(mean, 95% CI or None, values with NaN as None) over replications, NaNs ignored."""
    vals = [float(v) for v in values]
    cleaned = tuple(finite_or_none(v) for v in vals)
    finite = np.array([v for v in vals if math.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return None, None, cleaned
    mean = float(finite.mean())
    ci = None
    if len(finite) >= 2:
        half = t95(len(finite) - 1) * float(finite.std(ddof=1)) / math.sqrt(len(finite))
        ci = (mean - half, mean + half)
    return mean, ci, cleaned


def percentile(x: np.ndarray, q: float) -> float:
    """The q-th percentile (numpy's linear method); NaN for no values."""
    return float(np.percentile(x, q)) if len(x) else math.nan
