"""Write a run directory (resolved config, per-request and per-window Parquet, bands across
replications, summary.json) and record the run in the warehouse for comparison in SQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sim.engine.result import STATUS_NAMES, TIMESERIES_COLUMNS
from sim.errors import InputError

STATUS_ENUM = pl.Enum([STATUS_NAMES[k] for k in sorted(STATUS_NAMES)])
BAND_METRICS = tuple(c for c in TIMESERIES_COLUMNS if c not in ("window_start_s", "window_end_s"))


def check_out_dir(out_dir: Path | None) -> None:
    """Fail before simulating, not after, when `--out` can never be written."""
    if out_dir is None:
        return
    target = Path(out_dir)
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(str(target), None, f"Not a directory: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(str(target), None, f"Permission denied: cannot write in {probe}")


def make_run_dir(name: str, out_dir: Path | None, started_at: dt.datetime) -> tuple[Path, str]:
    """`out_dir`, or `runs/<name>-<UTC timestamp>/` (suffixed -2, -3 ... if taken); and the run id."""
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    if out_dir is not None:
        run_dir = Path(out_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        base = Path("runs") / f"{name}-{stamp}"
        run_dir, k = base, 1
        while run_dir.exists():
            k += 1
            run_dir = base.with_name(f"{base.name}-{k}")
        run_dir.mkdir(parents=True)
    # The id names the directory by its absolute path, so two runs in the same second into
    # folders of the same name (a/run, b/run) never replace each other in the warehouse; a re-run
    # into the same folder does replace its record, as it replaces the files.
    where = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:8]
    if out_dir is None:  # the folder name already is <name>-<stamp>
        return run_dir, f"{run_dir.name}-{where}"
    return run_dir, f"{name}-{stamp}-{run_dir.name}-{where}"


def _version() -> str:
    try:
        return metadata.version("infercost")
    except metadata.PackageNotFoundError:
        return "unknown"


def resolved_config(scenario, *, started_at: dt.datetime, run_id: str) -> dict[str, Any]:
    """Everything a run depended on: the TOML after overrides, resolved fleets and price provenance."""
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat() + "Z",
        "infercost_version": _version(),
        "scenario_file": str(scenario.path),
        "name": scenario.name,
        "seed": scenario.seed,
        "replications": scenario.replications,
        "price_as_of": scenario.price_as_of,
        "window_s": scenario.window_s,
        "horizon_s": scenario.horizon_s,
        "model": dataclasses.asdict(scenario.model),
        "slo": dataclasses.asdict(scenario.slo),
        "workload": scenario.workload,
        "fleets": [dataclasses.asdict(f) for f in scenario.fleets],
        "prices": scenario.prices,
        "toml": scenario.raw,
    }


REQUEST_COLUMNS = (
    "replication", "fleet", "request", "arrival_s", "start_s", "first_token_s", "finish_s",
    "prompt_tokens", "output_tokens", "status", "attempts", "served_by", "cost_usd",
)  # fmt: skip


def requests_frame(reps) -> pl.DataFrame:
    """One row per request per fleet per replication."""
    statuses = pl.Series([STATUS_NAMES[k] for k in sorted(STATUS_NAMES)], dtype=STATUS_ENUM)
    frames = []
    for rep in reps:
        for fr in rep.fleets:
            n = len(fr.arrival_s)
            served = fr.served_by if fr.served_by is not None else np.zeros(n, dtype=np.int8)
            frame = pl.DataFrame(
                {
                    "request": np.arange(n, dtype=np.int64),
                    "arrival_s": fr.arrival_s.astype(np.float64),
                    "start_s": fr.start_s.astype(np.float64),
                    "first_token_s": fr.first_token_s.astype(np.float64),
                    "finish_s": fr.finish_s.astype(np.float64),
                    "prompt_tokens": fr.prompt_tokens.astype(np.int64),
                    "output_tokens": fr.output_tokens.astype(np.int64),
                    "status": statuses.gather(fr.status.astype(np.int64)),
                    "attempts": fr.attempts.astype(np.int16),
                    "served_by": np.asarray(served, dtype=np.int8),
                    "cost_usd": fr.cost_usd.astype(np.float64),
                }
            )
            frames.append(
                frame.with_columns(
                    pl.lit(rep.replication, dtype=pl.Int32).alias("replication"),
                    pl.lit(fr.name, dtype=pl.String).alias("fleet"),
                ).select(REQUEST_COLUMNS)
            )
    return pl.concat(frames)


def timeseries_frame(reps) -> pl.DataFrame:
    frames = []
    for rep in reps:
        for fr in rep.fleets:
            ts = fr.timeseries.select(list(TIMESERIES_COLUMNS)).cast(
                {c: pl.Float64 for c in TIMESERIES_COLUMNS}
            )
            frames.append(
                ts.with_columns(
                    pl.lit(rep.replication, dtype=pl.Int32).alias("replication"),
                    pl.lit(fr.name).alias("fleet"),
                    pl.lit(fr.kind).alias("kind"),
                ).select(["replication", "fleet", "kind", *TIMESERIES_COLUMNS])
            )
    return pl.concat(frames)


def bands_frame(timeseries: pl.DataFrame) -> pl.DataFrame:
    """Per fleet, window and metric across replications: mean, p5/p50/p95, and a 95% CI of the mean.

    p5..p95 is the spread of the quantity between replications (it converges as replications grow);
    the CI says how sure the mean is (it shrinks like 1/sqrt(n)).
    """
    from sim.run import t95

    long = timeseries.unpivot(
        index=["replication", "fleet", "window_start_s"],
        on=list(BAND_METRICS),
        variable_name="metric",
    ).drop_nans("value")
    agg = (
        long.group_by(["fleet", "window_start_s", "metric"])
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").quantile(0.05, "linear").alias("p5"),
            pl.col("value").quantile(0.50, "linear").alias("p50"),
            pl.col("value").quantile(0.95, "linear").alias("p95"),
            pl.col("value").std(ddof=1).alias("std"),
            pl.len().alias("n"),
        )
        .sort(["fleet", "metric", "window_start_s"])
    )
    n = agg["n"].to_numpy()
    t = np.array([t95(int(k) - 1) if k >= 2 else math.nan for k in n])
    half = t * agg["std"].fill_null(float("nan")).to_numpy() / np.sqrt(np.maximum(n, 1))
    mean = agg["mean"].to_numpy()
    return (
        agg.with_columns(pl.Series("ci95_lo", mean - half), pl.Series("ci95_hi", mean + half))
        .drop("std")
        .with_columns(pl.col("n").cast(pl.Int32))
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    path.write_text(
        json.dumps(_nan_to_none(data), indent=2, default=_json_default) + "\n", encoding="utf-8"
    )


def write_run(
    run_dir: Path, scenario, reps, summary: dict, *, started_at: dt.datetime, run_id: str
) -> dict[str, Path]:
    """Write every output file of a run; returns their paths by short name."""
    paths = {
        "config": run_dir / "scenario.resolved.json",
        "requests": run_dir / "requests.parquet",
        "timeseries": run_dir / "timeseries.parquet",
        "bands": run_dir / "bands.parquet",
        "summary": run_dir / "summary.json",
    }
    write_json(paths["config"], resolved_config(scenario, started_at=started_at, run_id=run_id))
    requests_frame(reps).write_parquet(paths["requests"], statistics=False)
    ts = timeseries_frame(reps)
    ts.write_parquet(paths["timeseries"], statistics=False)
    bands_frame(ts).write_parquet(paths["bands"], statistics=False)
    write_json(paths["summary"], summary)
    return paths


# Summary figures stored per fleet in sim_summaries (metric name -> path into a fleet entry).
SUMMARY_METRICS: tuple[tuple[str, tuple], ...] = (
    ("total_cost_usd", ("total_cost_usd", "mean")),
    ("total_cost_usd_ci_lo", ("total_cost_usd", "ci95", 0)),
    ("total_cost_usd_ci_hi", ("total_cost_usd", "ci95", 1)),
    ("usd_per_mtok_output", ("usd_per_mtok_output", "mean")),
    ("usd_per_1k_requests", ("usd_per_1k_requests", "mean")),
    ("success_rate", ("success_rate", "mean")),
    ("slo_attainment", ("slo_attainment", "mean")),
    *(
        (f"{m}_{q}_s", (f"{m}_s", q, "mean"))
        for m in ("ttft", "e2e", "tpot")
        for q in ("p50", "p90", "p99")
    ),
    *(
        (f"requests_{k}", ("requests", k))
        for k in ("arrivals", "ok", "failed", "dropped", "unfinished")
    ),
)


def dig(entry: dict, path: tuple) -> float | None:
    """The number at `path` in a nested summary entry; None when absent or not finite."""
    value: Any = entry
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def summaries_long(summary: dict) -> pl.DataFrame:
    """sim_summaries rows: fleet, kind, metric, value."""
    rows = []
    for entry in summary["fleets"]:
        base = {"fleet": entry["name"], "kind": entry["kind"]}
        for metric, path in SUMMARY_METRICS:
            rows.append({**base, "metric": metric, "value": dig(entry, path)})
        rows.append({**base, "metric": "meets_slo", "value": 1.0 if entry["meets_slo"] else 0.0})
        for key, value in entry["cost_breakdown_usd"].items():
            rows.append({**base, "metric": f"cost_{key}_usd", "value": float(value)})
    return pl.DataFrame(
        rows,
        schema={"fleet": pl.String, "kind": pl.String, "metric": pl.String, "value": pl.Float64},
    )


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
    warehouse, run_id: str, scenario, reps, summary: dict, *, started_at: dt.datetime
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


def write_report_if_available(run_dir: Path) -> Path | None:
    """The HTML report (sim.report), when that part is installed; otherwise nothing."""
    try:
        from sim.report import write_report
    except ImportError:
        return None
    result = write_report(run_dir)
    return Path(result) if result is not None else None
