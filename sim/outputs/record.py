"""Record a finished run in the warehouse (sim_runs, sim_summaries, sim_timeseries) so runs can be
compared in SQL. Only sim/outputs knows how a RunSummary becomes rows."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from sim.outputs.rundir import (
    BAND_METRICS,
    _json_default,
    _nan_to_none,
    resolved_config,
    timeseries_frame,
)
from sim.summary import RunSummary

# Warehouse metric names that differ from the summary's figure names (kept for stored runs).
_STORED_NAMES = {"total_cost_usd_lo": "total_cost_usd_ci_lo", "total_cost_usd_hi": "total_cost_usd_ci_hi"}  # fmt: skip


# The long form of `sim_summaries` and `sim_timeseries` rows (Warehouse.record_sim_run).
SUMMARY_SCHEMA = {"fleet": pl.String, "kind": pl.String, "metric": pl.String, "value": pl.Float64}
TIMESERIES_SCHEMA = {
    "replication": pl.Int32,
    "fleet": pl.String,
    "window_start_s": pl.Float64,
    "metric": pl.String,
    "value": pl.Float64,
}


def no_timeseries() -> pl.DataFrame:
    """`sim_timeseries` rows of a record that has none (sweep points, advice)."""
    return pl.DataFrame(schema=TIMESERIES_SCHEMA)


def summaries_long(summary: RunSummary) -> pl.DataFrame:
    """sim_summaries rows: fleet, kind, metric, value."""
    rows = []
    for fleet in summary.fleets:
        base = {"fleet": fleet.name, "kind": fleet.kind}
        for metric, value in fleet.figures().items():
            rows.append({**base, "metric": _STORED_NAMES.get(metric, metric), "value": value})
        rows.append({**base, "metric": "meets_slo", "value": 1.0 if fleet.meets_slo else 0.0})
        for key, value in fleet.cost_breakdown_usd.items():
            rows.append({**base, "metric": f"cost_{key}_usd", "value": float(value)})
        # Events, utilisation and SLO windows: prefixed names; not-applicable (None) left out.
        parts = {"events": fleet.events, "utilisation": fleet.utilisation}
        parts["slo_windows"] = fleet.slo_windows
        for prefix, part in parts.items():
            for key, value in (part.to_json() if part is not None else {}).items():
                if value is not None:
                    rows.append({**base, "metric": f"{prefix}_{key}", "value": float(value)})
        # A disaggregated fleet's pools and KV link: pool_<name>_<figure>, kv_link_<figure>.
        for name, pool in (fleet.pools or {}).items():
            for key, value in (
                ("replicas_launched", pool.replicas_launched),
                ("busy_fraction", pool.busy_fraction),
                ("cost_usd", pool.cost_usd.mean),
            ):
                if value is not None:
                    rows.append({**base, "metric": f"pool_{name}_{key}", "value": float(value)})
        if fleet.kv_link is not None:
            for key in ("transfers", "mean_transfer_s"):
                value = float(getattr(fleet.kv_link, key))
                rows.append({**base, "metric": f"kv_link_{key}", "value": value})
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)


def timeseries_long(timeseries: pl.DataFrame) -> pl.DataFrame:
    """sim_timeseries rows: replication, fleet, window_start_s, metric, value."""
    return (
        timeseries.unpivot(
            index=["replication", "fleet", "window_start_s"],
            on=list(BAND_METRICS),
            variable_name="metric",
        )
        .with_columns(
            pl.when(pl.col("value").is_nan()).then(None).otherwise(pl.col("value")).alias("value")
        )
        .select(["replication", "fleet", "window_start_s", "metric", "value"])
    )


def record_run(
    warehouse, run_id: str, scenario, reps, summary: RunSummary, *, started_at: dt.datetime
) -> None:
    """Store the run in sim_runs / sim_summaries / sim_timeseries."""
    config = resolved_config(scenario, started_at=started_at, run_id=run_id)
    warehouse.record_sim_run(
        run_id,
        scenario=scenario.name,
        started_at=started_at,
        config_json=json.dumps(_nan_to_none(config), default=_json_default, sort_keys=True),
        summaries=summaries_long(summary),
        timeseries=timeseries_long(timeseries_frame(reps)),
    )
