"""Break-even: sweep a traffic multiplier and find where the cheapest fleet meeting the SLO changes.

API cost grows with traffic while an owned fleet costs the same per hour until it runs out of
capacity, so the verdict flips at some scale; this module finds those scales on the real simulator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from sim.analysis.runner import Evaluate, base_rate_scale, evaluate_all, simulate_summary
from sim.analysis.summary import verdict_rows
from sim.errors import InputError
from sim.scenario import Scenario
from sim.stats import mean_ci

DEFAULT_POINTS = 12


def parse_scales(
    text: str, points: int = DEFAULT_POINTS, *, source: str = "--scale"
) -> list[float]:
    """`"0.1..20"` -> `points` log-spaced multipliers from 0.1 to 20; `"0.5,1,2"` -> those values."""
    try:
        if ".." in text:
            lo_text, hi_text = text.split("..", 1)
            lo, hi = float(lo_text), float(hi_text)
            if points < 2:
                raise InputError(source, "--points", "a range needs at least 2 points")
            if not 0 < lo < hi:
                raise InputError(source, None, f"range {text!r} must be 0 < low < high")
            scales = np.geomspace(lo, hi, points).tolist()
        else:
            scales = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise InputError(
            source, None, f"not a range like 0.1..20 or a list like 1,2,4: {text!r}"
        ) from None
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise InputError(source, None, f"scales must be positive numbers: {text!r}")
    return scales


def breakeven(
    scenario: Scenario,
    scales: Sequence[float],
    *,
    seed: int | None = None,
    replications: int | None = None,
    workers: int | None = None,
    evaluate: Evaluate = simulate_summary,
) -> pl.DataFrame:
    """One row per (scale, fleet): cost, $/1k requests, SLO met, and whether it is the verdict.

    `scale` multiplies the scenario's own `workload.rate_scale` (a scenario at 2x swept at 3x runs at
    6x). The same seed at every scale gives common random numbers across the sweep.
    """
    base = base_rate_scale(scenario)
    scales = sorted(scales)
    variants = [scenario.varied([f"workload.rate_scale={base * s!r}"]) for s in scales]
    summaries = evaluate_all(
        evaluate, variants, seed=seed, replications=replications, workers=workers
    )
    rows = []
    for scale, summary in zip(scales, summaries, strict=True):
        rows += verdict_rows(summary, scale=float(scale), rate_scale=base * scale)
    return pl.DataFrame(rows, infer_schema_length=None)


def winners(df: pl.DataFrame) -> list[tuple[float, str | None]]:
    """(scale, cheapest fleet meeting the SLO or None) in increasing scale."""
    out = []
    for scale in sorted(set(df["scale"].to_list())):
        at = df.filter(pl.col("scale") == scale)
        chosen = at.filter(pl.col("cheapest"))["fleet"].to_list()
        out.append((scale, chosen[0] if chosen else None))
    return out


def crossovers(df: pl.DataFrame, cost: str = "total_cost_usd") -> list[dict]:
    """Where the verdict changes between neighbouring scales.

    When both fleets meet the SLO on both sides, the change is a cost crossing and its scale is
    interpolated linearly on the cost difference (exact when one cost is linear in traffic and the
    other flat, the API-versus-owned case). `scale_ci95` then brackets it by interpolating the 95%
    CI of the paired per-replication cost difference in the same way (approximate; clipped to the
    neighbouring points, so a bound equal to `scale_lo`/`scale_hi` means "at least this wide").
    Otherwise a fleet gained or lost the SLO somewhere in between; the scale reported is the
    geometric midpoint and `scale_lo`/`scale_hi` bound it.
    """
    found = []
    path = winners(df)
    for (s0, w0), (s1, w1) in zip(path, path[1:], strict=False):
        if w0 == w1:
            continue
        crossing = {"scale_lo": s0, "scale_hi": s1, "from_fleet": w0, "to_fleet": w1}
        gap0 = _cost_gap(df, s0, w0, w1, cost)
        gap1 = _cost_gap(df, s1, w0, w1, cost)
        if gap0 is not None and gap1 is not None and gap1["mean"] != gap0["mean"]:
            crossing["scale"] = _zero(s0, gap0["mean"], s1, gap1["mean"])
            crossing["reason"] = "cost"
            if gap0["ci95"] and gap1["ci95"]:
                # The upper bound of (from - to) reaches zero first: the earliest plausible crossing.
                crossing["scale_ci95"] = [
                    _zero(s0, gap0["ci95"][1], s1, gap1["ci95"][1]),
                    _zero(s0, gap0["ci95"][0], s1, gap1["ci95"][0]),
                ]
        else:
            crossing["scale"] = math.sqrt(s0 * s1)
            crossing["reason"] = "slo"
        found.append(crossing)
    return found


def _zero(s0: float, y0: float, s1: float, y1: float) -> float:
    """Where the line through (s0, y0), (s1, y1) crosses zero going up, clipped to [s0, s1]."""
    if y0 >= 0:
        return s0
    if y1 <= 0:
        return s1
    return s0 + (s1 - s0) * (-y0) / (y1 - y0)


def describe_crossover(crossing: dict) -> str:
    """One line for terminals and reports. The grid brackets the change; the interpolated scale
    (and its CI, which only covers replication noise under a linear-cost assumption) is a hint
    inside that bracket, never a claim finer than the grid."""
    lo, hi = crossing["scale_lo"], crossing["scale_hi"]
    change = (
        f"the cheapest fleet meeting the SLO goes from {crossing['from_fleet'] or 'none'} to "
        f"{crossing['to_fleet'] or 'none'} between {lo:.3g}x and {hi:.3g}x"
    )
    if crossing["reason"] == "cost":
        ci = crossing.get("scale_ci95")
        sure = f" (95% CI {ci[0]:.3g}x..{ci[1]:.3g}x from replication noise)" if ci else ""
        hint = f"costs cross; linear interpolation puts it near {crossing['scale']:.3g}x{sure}"
    else:
        hint = "a fleet gains or loses the SLO there"
    return f"{change}: {hint}; refine with --scale {lo:.3g}..{hi:.3g}"


def _cost_gap(
    df: pl.DataFrame, scale: float, a: str | None, b: str | None, cost: str
) -> dict | None:
    """cost(a) - cost(b) at `scale` as `{mean, ci95}` when both fleets meet the SLO there, else None.

    The CI comes from paired per-replication differences when both fleets have them (same
    replications, common random numbers); otherwise it is None.
    """
    if a is None or b is None:
        return None
    at = df.filter((pl.col("scale") == scale) & pl.col("fleet").is_in([a, b]) & pl.col("meets_slo"))
    rows = {r["fleet"]: r for r in at.to_dicts()}
    if rows.get(a, {}).get(cost) is None or rows.get(b, {}).get(cost) is None:
        return None
    gap = {"mean": rows[a][cost] - rows[b][cost], "ci95": None}
    va, vb = rows[a].get("total_cost_usd_values"), rows[b].get("total_cost_usd_values")
    if cost == "total_cost_usd" and va and vb and len(va) == len(vb) >= 2:
        gap["ci95"] = mean_ci([x - y for x, y in zip(va, vb, strict=True)])[1]
    return gap


def write_breakeven(out_dir: Path, df: pl.DataFrame, crossings: list[dict]) -> None:
    """`breakeven.parquet` and `crossovers.json` in `out_dir`; the report draws the curve from them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out_dir / "breakeven.parquet")
    described = [{**c, "description": describe_crossover(c)} for c in crossings]
    (out_dir / "crossovers.json").write_text(json.dumps(described, indent=2) + "\n")
