"""Flatten a run's `summary.json` into one row per fleet, the shape every analysis table shares."""

from __future__ import annotations

import math
from collections.abc import Iterable

from sim.output import dig

# (column, path into a fleet's summary entry); every figure is a mean across replications.
FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("total_cost_usd", ("total_cost_usd", "mean")),
    ("total_cost_usd_lo", ("total_cost_usd", "ci95", 0)),
    ("total_cost_usd_hi", ("total_cost_usd", "ci95", 1)),
    ("usd_per_mtok_output", ("usd_per_mtok_output", "mean")),
    ("usd_per_1k_requests", ("usd_per_1k_requests", "mean")),
    ("slo_attainment", ("slo_attainment", "mean")),
    ("ttft_p50_s", ("ttft_s", "p50", "mean")),
    ("ttft_p90_s", ("ttft_s", "p90", "mean")),
    ("ttft_p99_s", ("ttft_s", "p99", "mean")),
    ("tpot_p99_s", ("tpot_s", "p99", "mean")),
    ("e2e_p50_s", ("e2e_s", "p50", "mean")),
    ("e2e_p90_s", ("e2e_s", "p90", "mean")),
    ("e2e_p99_s", ("e2e_s", "p99", "mean")),
)


def fleet_rows(summary: dict) -> list[dict]:
    """One dict per fleet: name, kind, meets_slo, the FIGURES columns (None where absent)."""
    rows = []
    for entry in summary.get("fleets", []):
        row = {"fleet": str(entry["name"]), "kind": str(entry.get("kind", ""))}
        row["meets_slo"] = bool(entry.get("meets_slo", False))
        for column, path in FIGURES:
            row[column] = dig(entry, path)
        # Per-replication totals: with common random numbers across fleets, paired differences
        # give a much tighter interval on "which is cheaper" than the two CIs side by side.
        values = (entry.get("total_cost_usd") or {}).get("values")
        row["total_cost_usd_values"] = (
            [float(v) for v in values] if values and None not in values else None
        )
        rows.append(row)
    return rows


def verdict(summary: dict) -> str | None:
    """The run's own verdict (`cheapest_meeting_slo`, decided by sim.run); computed from the fleet
    rows only for summaries that lack it (older runs, constructed test cases).
    """
    if "cheapest_meeting_slo" in summary:
        return summary["cheapest_meeting_slo"]
    return cheapest_meeting_slo(fleet_rows(summary))


def verdict_rows(summary: dict, **point) -> list[dict]:
    """One row per fleet of `summary`: the `point` columns (scale, price date, ...), the FIGURES,
    and `cheapest` (whether the fleet is the run's verdict)."""
    winner = verdict(summary)
    return [{**point, **row, "cheapest": row["fleet"] == winner} for row in fleet_rows(summary)]


def cheapest_meeting_slo(rows: Iterable[dict], cost: str = "total_cost_usd") -> str | None:
    """The fleet with the lowest `cost` among those meeting the SLO; None when none does.

    Ties go to the first fleet in scenario order, so the verdict never depends on float noise
    between identical fleets.
    """
    best_name, best_cost = None, math.inf
    for row in rows:
        value = row.get(cost)
        if row.get("meets_slo") and value is not None and value < best_cost:
            best_name, best_cost = row["fleet"], value
    return best_name
