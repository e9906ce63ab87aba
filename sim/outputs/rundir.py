"""Write a run directory: the resolved config, per-request and per-window Parquet, bands across
replications, and summary.json from the typed `RunSummary`. Rendering the report is not done here
(sim/report reads the directory afterwards).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from sim.engine.result import STATUS_NAMES, TIMESERIES_COLUMNS
from sim.errors import InputError
from sim.stats import t95
from sim.summary import RunSummary

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


def resolved_config(
    scenario, *, started_at: dt.datetime, run_id: str, warehouse: str | None = None
) -> dict[str, Any]:
    """Everything a run depended on: the TOML after overrides, resolved fleets, price provenance
    and the warehouse the prices came from (the report reads its price history there)."""
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
        "slo": scenario.slo.to_json(),
        "workload": scenario.raw.get("workload", {}),
        "fleets": [dataclasses.asdict(f) for f in scenario.fleets],
        "prices": scenario.prices,
        "warehouse": warehouse,
        "description": scenario.description,
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


def write_requests(path: Path, reps, requests: str, *, seed: int) -> Path | None:
    """requests.parquet as `requests` asks; the mode is stated in the file's metadata
    (`infercost.requests`). Streamed fleets bring their rows already chosen (Parquet bytes, one
    piece per fleet and replication, copied row group by row group); in-memory fleets are
    sampled here with the same per-request keys (`sim.engine.rows`). None when "none"."""
    from sim.engine.rows import parse_requests_option, request_sample, rows_metadata

    mode, n = parse_requests_option(requests)
    if mode == "none":
        return None
    pieces = [fr.rows for rep in reps for fr in rep.fleets if getattr(fr, "rows", None)]
    if pieces:
        first = pq.ParquetFile(io.BytesIO(pieces[0]))
        with pq.ParquetWriter(path, first.schema_arrow) as out:
            for piece in pieces:
                part = pq.ParquetFile(io.BytesIO(piece))
                for k in range(part.num_row_groups):
                    out.write_table(part.read_row_group(k))
        return path
    df = requests_frame(reps)
    if mode == "sample":
        df = request_sample(df, n, seed=seed)
    table = df.to_arrow()
    pq.write_table(
        table.replace_schema_metadata(
            {**(table.schema.metadata or {}), **rows_metadata(mode, n, seed)}
        ),
        path,
        write_statistics=False,
    )
    return path


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
    run_dir: Path,
    scenario,
    reps,
    summary: RunSummary,
    *,
    started_at: dt.datetime,
    run_id: str,
    warehouse: str | None = None,
    requests: str = "all",
) -> dict[str, Path]:
    """Write every output file of a run; returns their paths by short name. `requests` says
    which request rows go into requests.parquet: "all", "sample:N" (per fleet and replication)
    or "none" (no file)."""
    paths = {
        "config": run_dir / "scenario.resolved.json",
        "requests": run_dir / "requests.parquet",
        "timeseries": run_dir / "timeseries.parquet",
        "bands": run_dir / "bands.parquet",
        "summary": run_dir / "summary.json",
    }
    config = resolved_config(scenario, started_at=started_at, run_id=run_id, warehouse=warehouse)
    write_json(paths["config"], config)
    if write_requests(paths["requests"], reps, requests, seed=scenario.seed) is None:
        del paths["requests"]
    ts = timeseries_frame(reps)
    ts.write_parquet(paths["timeseries"], statistics=False)
    bands_frame(ts).write_parquet(paths["bands"], statistics=False)
    write_json(paths["summary"], summary.to_json())
    return paths
