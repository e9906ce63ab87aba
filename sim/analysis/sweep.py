"""Grid sweeps: the cartesian product of values for any scenario keys, all results in one table."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from sim.analysis.runner import Evaluate, evaluate_all, simulate_summary
from sim.analysis.summary import verdict_rows
from sim.errors import InputError
from sim.scenario import Scenario
from sim.summary import RunSummary


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`["fleet.1.max_replicas=2,4,8", "workload.rate_scale=1,2"]` -> [(key, values), ...].

    Values stay text: the scenario loader parses them exactly as it parses `--set key=value`.
    """
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values_text = spec.partition("=")
        key = key.strip()
        values = [v.strip() for v in values_text.split(",") if v.strip()]
        if not sep or not key or not values:
            raise InputError(
                "--grid", spec, "expected KEY=V1,V2,... e.g. fleet.1.max_replicas=2,4,8"
            )
        if any(key == seen for seen, _ in axes):
            raise InputError("--grid", key, "given twice; put all its values in one --grid")
        axes.append((key, values))
    if not axes:
        raise InputError("--grid", None, "give at least one --grid KEY=V1,V2,...")
    return axes


def grid_points(axes: Sequence[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination, the last axis varying fastest (like nested for-loops in --grid order)."""
    keys = [key for key, _ in axes]
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def sweep(
    scenario: Scenario,
    axes: Sequence[tuple[str, list[str]]],
    *,
    seed: int | None = None,
    replications: int | None = None,
    workers: int | None = None,
    evaluate: Evaluate = simulate_summary,
) -> list[tuple[dict[str, str], RunSummary]]:
    """(grid point, its summary) for every point, in grid order; each point is a typed copy of
    `scenario` with the point's keys changed."""
    points = grid_points(axes)
    variants = [scenario.varied([f"{k}={v}" for k, v in point.items()]) for point in points]
    summaries = evaluate_all(
        evaluate, variants, seed=seed, replications=replications, workers=workers
    )
    return list(zip(points, summaries, strict=True))


def sweep_table(results: Sequence[tuple[dict[str, str], RunSummary]]) -> pl.DataFrame:
    """One row per (grid point, fleet): point index, the key values as text, then the figures."""
    rows = []
    for index, (point, summary) in enumerate(results):
        rows += verdict_rows(summary, **{"point": index, **point})
    return pl.DataFrame(rows, infer_schema_length=None)


def record_sweep(
    warehouse,
    results: Sequence[tuple[dict[str, str], RunSummary]],
    *,
    scenario: str,
    started_at: datetime | None = None,
) -> list[str]:
    """Store each grid point as run `sweep-<UTC timestamp>-<point>` via `Warehouse.record_sim_run`.

    Figures use the same long form and metric names as `sim run` (sim.outputs.summaries_long), so one
    query covers runs and sweeps; the point's key values travel in the run's config JSON.
    """
    from sim.outputs import no_timeseries, summaries_long

    started_at = started_at or datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    no_series = no_timeseries()
    run_ids = []
    for index, (point, summary) in enumerate(results):
        run_id = f"sweep-{stamp}-{index}"
        warehouse.record_sim_run(
            run_id,
            scenario=scenario,
            started_at=started_at,
            config_json=json.dumps({"sweep": point, "seed": summary.seed}, sort_keys=True),
            summaries=summaries_long(summary),
            timeseries=no_series,
        )
        run_ids.append(run_id)
    return run_ids
