"""One row per fleet of a `RunSummary`, the shape every analysis table shares."""

from __future__ import annotations

from sim.summary import RunSummary, slo_failures


def fleet_rows(summary: RunSummary) -> list[dict]:
    """One dict per fleet: name, kind, meets_slo, the SLO terms it misses, and its figures."""
    rows = []
    for fleet in summary.fleets:
        row = {"fleet": fleet.name, "kind": fleet.kind, "meets_slo": fleet.meets_slo}
        row["slo_failed"] = ", ".join(slo_failures(fleet, summary.slo)) or None
        row.update(fleet.figures())
        # Per-replication totals: with common random numbers across fleets, paired differences
        # give a much tighter interval on "which is cheaper" than the two CIs side by side.
        values = fleet.total_cost_usd.values
        row["total_cost_usd_values"] = (
            [float(v) for v in values] if values and None not in values else None
        )
        rows.append(row)
    return rows


def verdict_rows(summary: RunSummary, **point) -> list[dict]:
    """One row per fleet of `summary`: the `point` columns (scale, price date, ...), the figures,
    and `cheapest` (whether the fleet is the run's verdict)."""
    winner = summary.cheapest_meeting_slo
    return [{**point, **row, "cheapest": row["fleet"] == winner} for row in fleet_rows(summary)]
