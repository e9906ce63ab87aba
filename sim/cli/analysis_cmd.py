"""`sim report`, `sim compare`, `sim breakeven`, `sim sweep`, `sim replay`: decisions over runs."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import click
import polars as pl

from sim.cli import cli
from sim.cli.options import executor_options, make_executor
from sim.errors import InputError

MAX_CHANGES_SHOWN = 20


def _print_frame(df: pl.DataFrame) -> None:
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        fmt_str_lengths=60,
        float_precision=4,
        tbl_width_chars=200,
    ):
        click.echo(str(df))


def _warehouse(ctx: click.Context):
    """The warehouse named by --db / $INFERCOST_DB opened read-only, or None for the default."""
    db = (ctx.obj or {}).get("db")
    if not db:
        return None
    from warehouse.db import Warehouse

    return Warehouse(db, read_only=True)


def _write_report(ctx: click.Context, out_dir: Path) -> Path:
    from sim.report import write_report

    return write_report(out_dir, db_path=(ctx.obj or {}).get("db"))


def _evaluate(ctx: click.Context, executor):
    from sim.analysis.runner import Simulate

    return Simulate(warehouse=_warehouse(ctx), executor=executor)


def _out_dir(ctx: click.Context, out: Path | None, kind: str, scenario_file: Path) -> Path:
    """The output directory, with `analysis.json` saying what produced it (the report shows it)."""
    started_at = dt.datetime.now(dt.UTC)
    if out is None:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", scenario_file.stem)
        out = Path("runs") / f"{kind}-{stem}-{started_at.strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "analysis": kind,
        "scenario_file": str(scenario_file),
        "started_at": started_at.isoformat(timespec="seconds"),
        "options": {k: v for k, v in ctx.params.items() if k not in ("scenario_file", "out")},
    }
    (out / "analysis.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return out


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise InputError(f"--{name}", None, f"must be >= 1, got {value}")


def _point_options(ctx: click.Context, replications, seed, workers) -> dict:
    """What breakeven, sweep and replay pass to every point they evaluate (the common options);
    opens the --db warehouse, so call it after the command's own arguments are checked. The
    points' tasks run as one batch on --backend (a process pool by default, or Ray)."""
    params = ctx.params
    executor = make_executor(params["backend"], params["address"], workers)
    return {
        "seed": seed,
        "replications": replications,
        "workers": workers,
        "evaluate": _evaluate(ctx, executor),
    }


def _scenario(scenario_file: Path, overrides):
    """The scenario, loaded and validated once; every point is a typed copy of it."""
    from sim.scenario import load_scenario

    return load_scenario(scenario_file, list(overrides))


# Columns every analysis table prints after its own point columns: cost, then why a fleet
# meets the SLO or not.
VERDICT_COLUMNS = (
    "fleet", "total_cost_usd", "usd_per_1k_requests", "ttft_p99_s", "tpot_p99_s",
    "success_rate", "meets_slo", "slo_failed", "cheapest",
)  # fmt: skip


_scenario_arg = click.argument(
    "scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_common = [
    click.option(
        "--replications",
        "-n",
        type=int,
        default=None,
        help="Replications per point (default: the scenario's).",
    ),
    click.option(
        "--seed",
        type=int,
        default=None,
        help="Seed (default: the scenario's); the same at every point.",
    ),
    click.option(
        "--workers",
        "-j",
        type=int,
        default=None,
        help="Processes for the points' tasks (default: one per core).",
    ),
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a scenario key at every point, as in `sim run` (repeatable).",
    ),
    click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Output directory (default: runs/<command>-<scenario>-<UTC time>/).",
    ),
]


def _with_common(func):
    for option in reversed(_common):
        func = option(func)
    return executor_options(func)


@cli.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def report_cmd(ctx: click.Context, run_dir: Path) -> None:
    """Regenerate RUN_DIR/report.html and RUN_DIR/charts/*.png from the run's files.

    The page is self-contained (inline SVG charts, no network), so it opens offline and can be
    mailed as one file. Price history comes from the warehouse when it can be opened read-only.

    Example:

        sim report runs/peak-20250701T120000Z
    """
    click.echo(str(_write_report(ctx, run_dir)))


@cli.command("compare")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(run_a: Path, run_b: Path, as_json: bool) -> None:
    """Per fleet and figure: RUN_A, RUN_B, their difference (B - A, absolute and %), and whether the
    verdict (cheapest fleet meeting the SLO) changed. `ci_separated` is true where the two 95%
    confidence intervals of total cost do not overlap, i.e. the change exceeds replication noise.

    Example:

        sim compare runs/peak-a runs/peak-b
    """
    from sim.analysis.compare import compare_runs, config_changes

    df, verdict = compare_runs(run_a, run_b)
    changes = config_changes(run_a, run_b)
    if as_json:
        payload = {"verdict": verdict, "config_changes": changes, "rows": df.to_dicts()}
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    if changes:
        click.echo("configuration differences (A -> B):")
        for change in changes[:MAX_CHANGES_SHOWN]:
            click.echo(f"  {change['key']}: {change['a']!r} -> {change['b']!r}")
        if len(changes) > MAX_CHANGES_SHOWN:
            click.echo(f"  ... and {len(changes) - MAX_CHANGES_SHOWN} more (--json shows all)")
    _print_frame(df.filter(pl.col("a").is_not_null() | pl.col("b").is_not_null()))
    if verdict["changed"]:
        click.echo(
            f"VERDICT CHANGED: cheapest meeting the SLO was {verdict['a'] or 'none'} in A, is {verdict['b'] or 'none'} in B"
        )
    else:
        click.echo(
            f"verdict unchanged: cheapest meeting the SLO is {verdict['a'] or 'none'} in both"
        )


@cli.command("breakeven")
@_scenario_arg
@click.option(
    "--scale",
    "scale_text",
    default="0.1..20",
    show_default=True,
    help="Traffic multipliers: a range LOW..HIGH (log-spaced) or a list 0.5,1,2.",
)
@click.option(
    "--points", type=int, default=12, show_default=True, help="Points in a LOW..HIGH range."
)
@_with_common
@click.pass_context
def breakeven_cmd(
    ctx,
    scenario_file: Path,
    scale_text: str,
    points: int,
    replications,
    seed,
    workers,
    overrides,
    out,
    backend,
    address,
) -> None:
    """Sweep a traffic multiplier and report where the cheapest fleet meeting the SLO changes.

    The multiplier composes with the scenario's own workload.rate_scale. Writes breakeven.parquet,
    crossovers.json and report.html (with the break-even curve) to the output directory.

    Example:

        sim breakeven scenarios/peak.toml --scale 0.1..20 --points 10 --replications 3
    """
    from sim.analysis.breakeven import (
        breakeven,
        crossovers,
        describe_crossover,
        parse_scales,
        write_breakeven,
    )

    _check_positive(replications=replications, workers=workers)
    scales = parse_scales(scale_text, points)
    scenario = _scenario(scenario_file, overrides)
    point_options = _point_options(ctx, replications, seed, workers)
    df = breakeven(
        scenario,
        scales,
        **point_options,
    )
    found = crossovers(df)
    out_dir = _out_dir(ctx, out, "breakeven", scenario_file)
    write_breakeven(out_dir, df, found)
    _print_frame(df.select("scale", *VERDICT_COLUMNS))
    for crossing in found:
        click.echo(describe_crossover(crossing))
    if not found:
        click.echo("no crossover: the cheapest fleet meeting the SLO is the same at every scale")
    click.echo(f"wrote {_write_report(ctx, out_dir)}")


@cli.command("sweep")
@_scenario_arg
@click.option(
    "--grid",
    "grid",
    multiple=True,
    required=True,
    help="KEY=V1,V2,... (repeatable); every combination is run. Keys as for --set.",
)
@click.option("--no-record", is_flag=True, help="Do not store the points in the warehouse.")
@_with_common
@click.pass_context
def sweep_cmd(
    ctx,
    scenario_file: Path,
    grid: tuple[str, ...],
    no_record: bool,
    replications,
    seed,
    workers,
    overrides,
    out,
    backend,
    address,
) -> None:
    """Run every combination of the --grid values; all results in one table (sweep.parquet, the
    warehouse's sim_runs/sim_summaries as runs `sweep-<time>-<point>`, and report.html).

    Example:

        sim sweep scenarios/peak.toml --grid fleet.1.max_replicas=2,4,8 --grid workload.rate_scale=1,2
    """
    from sim.analysis.sweep import parse_grid, record_sweep, sweep, sweep_table

    _check_positive(replications=replications, workers=workers)
    axes = parse_grid(grid)
    scenario = _scenario(scenario_file, overrides)
    point_options = _point_options(ctx, replications, seed, workers)
    started_at = dt.datetime.now(dt.UTC)
    results = sweep(
        scenario,
        axes,
        **point_options,
    )
    df = sweep_table(results)
    out_dir = _out_dir(ctx, out, "sweep", scenario_file)
    df.write_parquet(out_dir / "sweep.parquet")
    keys = [key for key, _ in axes]
    _print_frame(df.select("point", *keys, *VERDICT_COLUMNS))
    if not no_record:
        from warehouse.db import Warehouse

        db = (ctx.obj or {}).get("db")
        with Warehouse(db) as wh:
            run_ids = record_sweep(
                wh,
                results,
                scenario=scenario.name,
                started_at=started_at,
            )
        click.echo(
            f"recorded {len(run_ids)} points in the warehouse as {run_ids[0]} .. {run_ids[-1]}"
        )
    click.echo(f"wrote {_write_report(ctx, out_dir)}")


@cli.command("replay")
@_scenario_arg
@click.option(
    "--as-of",
    "as_of",
    required=True,
    help="Price dates: 2025-01-01,2025-07-01,latest or a monthly range 2025-01..2025-07.",
)
@_with_common
@click.pass_context
def replay_cmd(
    ctx,
    scenario_file: Path,
    as_of: str,
    replications,
    seed,
    workers,
    overrides,
    out,
    backend,
    address,
) -> None:
    """Re-cost the same scenario at several price dates and show how the verdict moved.

    The traffic and seed are the same at every date, so differences come from prices alone.
    Writes replay.parquet and report.html (cost per date chart) to the output directory.

    Example:

        sim replay scenarios/peak.toml --as-of 2025-01-01,2025-07-01,latest
    """
    from sim.analysis.replay import parse_dates, replay, verdicts, write_replay

    _check_positive(replications=replications, workers=workers)
    dates = parse_dates(as_of)
    scenario = _scenario(scenario_file, overrides)
    point_options = _point_options(ctx, replications, seed, workers)
    df = replay(
        scenario,
        dates,
        **point_options,
    )
    out_dir = _out_dir(ctx, out, "replay", scenario_file)
    write_replay(out_dir, df)
    _print_frame(df.select("as_of", *VERDICT_COLUMNS))
    for date, winner in verdicts(df):
        click.echo(f"{date}: cheapest meeting the SLO is {winner or 'none'}")
    click.echo(f"wrote {_write_report(ctx, out_dir)}")
