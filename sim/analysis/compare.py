"""Compare two run directories: per fleet and figure, A vs B, the difference, and verdict changes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from sim.analysis.summary import fleet_rows
from sim.errors import InputError
from sim.summary import RunSummary

# Figures compared, with their 95% CI bounds when the summary has them (CIs that do not overlap
# mark a difference larger than replication noise).
COMPARED = [
    "total_cost_usd", "usd_per_mtok_output", "usd_per_1k_requests", "success_rate",
    "slo_attainment", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
    "e2e_p50_s", "e2e_p90_s", "e2e_p99_s",
]  # fmt: skip
CI_BOUNDS = {"total_cost_usd": ("total_cost_usd_lo", "total_cost_usd_hi")}


def load_summary(run_dir: Path) -> RunSummary:
    path = Path(run_dir) / "summary.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("fleets"), list):
            raise InputError(str(path), "fleets", "missing: not a summary written by sim run")
        return RunSummary.from_json(data)
    except FileNotFoundError:
        raise InputError(str(run_dir), None, "not a run directory (no summary.json)") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), None, f"not valid JSON: {exc}") from None


def compare_runs(run_a: Path, run_b: Path) -> tuple[pl.DataFrame, dict]:
    """(table, verdict). Table: fleet, metric, a, b, diff (b - a), diff_pct, ci_separated.

    A fleet present in only one run keeps its row with the other side null. `verdict` holds each
    run's cheapest fleet meeting the SLO and whether it changed.
    """
    summary_a, summary_b = load_summary(run_a), load_summary(run_b)
    rows_a = {r["fleet"]: r for r in fleet_rows(summary_a)}
    rows_b = {r["fleet"]: r for r in fleet_rows(summary_b)}
    fleets = list(rows_a) + [name for name in rows_b if name not in rows_a]
    table = []
    for fleet in fleets:
        a, b = rows_a.get(fleet, {}), rows_b.get(fleet, {})
        for metric in [*COMPARED, "meets_slo"]:
            va, vb = _number(a.get(metric)), _number(b.get(metric))
            diff = vb - va if va is not None and vb is not None else None
            pct = 100.0 * diff / abs(va) if diff is not None and va else None
            table.append(
                {
                    "fleet": fleet,
                    "metric": metric,
                    "a": va,
                    "b": vb,
                    "diff": diff,
                    "diff_pct": pct,
                    "ci_separated": _ci_separated(a, b, metric),
                }
            )
    df = pl.DataFrame(
        table,
        schema={
            "fleet": pl.Utf8,
            "metric": pl.Utf8,
            "a": pl.Float64,
            "b": pl.Float64,
            "diff": pl.Float64,
            "diff_pct": pl.Float64,
            "ci_separated": pl.Boolean,
        },
    )
    cheapest_a, cheapest_b = summary_a.cheapest_meeting_slo, summary_b.cheapest_meeting_slo
    return df, {"a": cheapest_a, "b": cheapest_b, "changed": cheapest_a != cheapest_b}


# Keys of scenario.resolved.json that differ between any two runs and say nothing about the
# scenario; `toml` repeats what the resolved sections already hold.
_NOT_CONFIG = {"run_id", "started_at", "toml"}


def config_changes(run_a: Path, run_b: Path) -> list[dict]:
    """What the two runs were asked to do differently: `[{key, a, b}]` over scenario.resolved.json,
    flattened to dotted keys (fleets by name, like `--set fleet.NAME.key`). Empty when a run lacks
    the file.
    """
    docs = []
    for run in (run_a, run_b):
        path = Path(run) / "scenario.resolved.json"
        if not path.exists():
            return []
        doc = json.loads(path.read_text())
        docs.append(_flatten({k: v for k, v in doc.items() if k not in _NOT_CONFIG}))
    a, b = docs
    return [
        {"key": key, "a": a.get(key), "b": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "name" in v for v in value)
    ):
        return _flatten(
            {str(v["name"]): {k: x for k, x in v.items() if k != "name"} for v in value}, prefix
        )
    return {prefix: value}


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _ci_separated(a: dict, b: dict, metric: str) -> bool | None:
    """True when both 95% CIs are known and disjoint; None when a CI is unknown."""
    bounds = CI_BOUNDS.get(metric)
    if not bounds:
        return None
    lo, hi = bounds
    values = [a.get(lo), a.get(hi), b.get(lo), b.get(hi)]
    if any(v is None for v in values):
        return None
    a_lo, a_hi, b_lo, b_hi = values
    return a_hi < b_lo or b_hi < a_lo
