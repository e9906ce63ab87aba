"""Billing rules that are the same for every fleet kind: commitment terms (reserved, committed,
savings plans) billed for their whole span, and one cost horizon (the scenario's span) for fixed
costs, with work that drains after it reported as overrun and its variable cost kept apart.

Pure functions over window edges and arrays, so they can be tested with known answers and called
from whatever fleet code does the accounting.
"""

from __future__ import annotations

import re

import numpy as np

# Terms billed whatever the use: a commitment. Anything else (on_demand, spot, low_priority, ...)
# is pay-as-you-go. Read generically, so new sources' term names need no code change.
COMMITMENT_PREFIXES = ("reserved", "committed", "commitment", "savings_plan")
PAY_AS_YOU_GO_TERMS = ("on_demand", "spot", "low_priority", "preemptible", "interruptible")
# The closed vocabulary a scenario's `term` may take (the warehouse's names plus AWS-style upfront
# options); `is_commitment` itself accepts any name with a commitment prefix.
COMMITMENT_TERMS = tuple(
    f"{kind}_{years}y{upfront}"
    for kind in COMMITMENT_PREFIXES
    for years in (1, 3)
    for upfront in ("", "_no_upfront", "_partial_upfront", "_all_upfront")
)

# Cost parts that accrue whether or not work runs; they count over the span only.
FIXED_COST_KEYS = frozenset({"capex", "colo", "commitment"})

HOURS_PER_YEAR = 8766.0  # 365.25 days


def is_commitment(term: str) -> bool:
    """Whether `term` commits to pay for its whole span (reserved_1y, committed_3y, ...)."""
    return str(term).lower().startswith(COMMITMENT_PREFIXES)


def is_known_term(term: str) -> bool:
    return is_commitment(term) or str(term) in PAY_AS_YOU_GO_TERMS


def term_years(term: str) -> float | None:
    """Length of a commitment term from its name (`reserved_3y_all_upfront` -> 3.0), else None."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(y|yr|year|years)\b", str(term).lower().replace("_", " "))
    return float(m.group(1)) if m else None


def amortised_usd_per_hour(hourly_usd: float, upfront_usd: float, years: float) -> float:
    """The effective hourly price of a term: its recurring hourly fee plus the upfront fee spread
    evenly over every hour of the term (no discounting)."""
    if years <= 0:
        raise ValueError(f"years: a term lasts > 0 years, got {years}")
    if hourly_usd < 0 or upfront_usd < 0:
        raise ValueError("hourly_usd and upfront_usd must be >= 0")
    return hourly_usd + upfront_usd / (years * HOURS_PER_YEAR)


def span_fraction(edges: np.ndarray, span_s: float) -> np.ndarray:
    """Per window, the fraction of its width that lies within [0, span_s]."""
    lo, hi = edges[:-1], edges[1:]
    width = hi - lo
    inside = np.clip(np.minimum(hi, span_s) - lo, 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(width > 0, np.minimum(inside / width, 1.0), 0.0)


def excess_overlap(
    edges: np.ndarray, start_s: np.ndarray, stop_s: np.ndarray, base: int
) -> np.ndarray:
    """Per window, the integral of max(0, n(t) - base), where n(t) counts intervals [start, stop)
    covering t: the replica-seconds beyond the first `base` replicas."""
    n_w = len(edges) - 1
    if len(start_s) == 0:
        return np.zeros(n_w)
    times = np.concatenate([start_s, stop_s])
    steps = np.concatenate([np.ones(len(start_s)), -np.ones(len(stop_s))])
    order = np.argsort(times, kind="stable")
    times, steps = times[order], steps[order]
    level = np.cumsum(steps)  # n(t) on [times[i], times[i+1])
    excess = np.maximum(level - base, 0.0)
    # Cumulative integral of the excess at each event time, then evaluated at the window edges.
    seg = np.diff(times) * excess[:-1]
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    k = np.searchsorted(times, edges, side="right") - 1
    at_edges = np.where(
        k < 0,
        0.0,
        cum[np.clip(k, 0, None)]
        + (edges - times[np.clip(k, 0, None)]) * excess[np.clip(k, 0, None)],
    )
    return np.diff(at_edges)


def commitment_parts(
    edges: np.ndarray,
    *,
    committed_replicas: int,
    usd_per_replica_hour: float,
    start_s: np.ndarray,
    stop_s: np.ndarray,
    burst_usd_per_replica_hour: float | None,
) -> dict[str, np.ndarray]:
    """Cost parts of a cloud fleet on a commitment term.

    The first `committed_replicas` replicas are paid every second at the term's (amortised)
    hourly price, used or not: a fixed part, which `apply_cost_horizon` then limits to the span.
    Replicas running beyond them are paid at the burst (on-demand) price for the time they run.
    Raises ValueError when replicas ran beyond the commitment and no burst price is known.
    """
    commitment = np.diff(edges) * committed_replicas * usd_per_replica_hour / 3600.0
    extra_s = excess_overlap(edges, start_s, stop_s, committed_replicas)
    if extra_s.sum() > 0 and burst_usd_per_replica_hour is None:
        raise ValueError(
            "fallback_price_usd_per_hour: replicas beyond min_replicas on a commitment term are "
            "billed on demand; set the on-demand price"
        )
    burst = extra_s * (burst_usd_per_replica_hour or 0.0) / 3600.0
    return {"commitment": commitment, "burst": burst}


def apply_cost_horizon(
    parts: dict[str, np.ndarray], edges: np.ndarray, span_s: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Parts on one cost horizon, [0, span_s], and the variable cost that fell after it.

    Fixed parts (`FIXED_COST_KEYS`) count only within the span: no idle capacity is charged for
    the drain. Variable parts are kept whole (every request served is paid for); the share of them
    that fell after the span (the drain of work left at the end) is returned as its own per-window
    array, reported separately as the overrun's variable cost. Windows straddling the span are
    split by time.
    """
    inside = span_fraction(edges, span_s)
    out: dict[str, np.ndarray] = {}
    overrun = np.zeros(len(edges) - 1)
    for key, values in parts.items():
        values = np.asarray(values, dtype=np.float64)
        if key.rsplit(".", 1)[-1] in FIXED_COST_KEYS:  # a pool's part: `prefill.capex`
            out[key] = values * inside
        else:
            out[key] = values
            overrun += values * (1.0 - inside)
    return out, overrun
