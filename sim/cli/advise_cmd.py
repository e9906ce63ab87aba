"""`sim advise`: search the market for the cheapest way to serve a scenario within its SLO."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sim.cli import cli
from sim.cli.options import executor_options, make_executor
from sim.errors import InputError


def _money(value) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _num(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def advice_table(payload: dict) -> Table:
    table = Table(
        title=f"{payload['scenario']}: {payload['screened']} candidates screened, "
        f"{payload['simulated']} simulated x {payload['replications']} replications, "
        f"prices as of {payload['price_as_of']}"
    )
    for header in (
        "#",
        "kind",
        "description",
        "term",
        "total",
        "per month",
        "$/Mtok in",
        "$/Mtok out",
        "TTFT p99",
        "TPOT p99",
        "SLO",
        "why not",
    ):
        table.add_column(header, overflow="fold")
    for r in payload["candidates"]:
        slo = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "est."}[r["meets_slo"]]
        table.add_row(
            str(r["rank"]),
            r["kind"],
            r["description"],
            r["term"],
            _money(r["cost_usd_total"]) + ("" if r["simulated"] else "*"),
            _money(r["cost_usd_per_month"]),
            _num(r["usd_per_mtok_input"], "{:.3f}"),
            _num(r["usd_per_mtok_output"], "{:.3f}"),
            _num(r["ttft_p99_s"], "{:.2f} s"),
            _num(r["tpot_p99_s"], "{:.3f} s"),
            slo,
            r["why_not"] or "",
        )
    return table


def record(advice, db: str | None, run_dir: Path) -> str:
    """Store the ranked table in the warehouse's simulation tables (one row per candidate and
    numeric column); returns the run id."""
    import datetime as dt

    import polars as pl

    from sim.advise.output import COLUMNS
    from sim.outputs import SUMMARY_SCHEMA, no_timeseries
    from warehouse import Warehouse

    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    run_id = f"advise-{advice.scenario}-{started:%Y%m%dT%H%M%SZ}-{run_dir.name}"
    rows = []
    for r in advice.rows:
        for key in COLUMNS:
            value = r.get(key)
            if isinstance(value, bool):
                value = float(value)
            if isinstance(value, int | float) and key != "rank":
                rows.append(
                    {
                        "fleet": f"{r['rank']}: {r['description']}",
                        "kind": r["kind"],
                        "metric": key,
                        "value": float(value),
                    }
                )
    summaries = pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
    with Warehouse(path=db) as wh:
        wh.record_sim_run(
            run_id,
            scenario=advice.scenario,
            started_at=started,
            config_json=json.dumps({"advise": True, "run_dir": str(run_dir)}),
            summaries=summaries,
            timeseries=no_timeseries(),
        )
    return run_id


@cli.command("advise")
@click.argument("scenario_file", metavar="SCENARIO.toml", type=click.Path(path_type=Path))
@click.option("--top", type=int, default=None, help="Candidates to simulate and show (default 10).")
@click.option("--json", "as_json", is_flag=True, help="Print the ranked table as JSON.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario key by dotted path (advise.max_gpus=16, workload.rate_scale=2).",
)
@click.option(
    "--workers", "-j", type=int, default=None, help="Worker processes (default: one per core)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory for advice.json, advice.parquet, advice.html (default runs/advise-...).",
)
@click.option("--no-record", is_flag=True, help="Do not record the table in the warehouse.")
@click.option("--all", "show_all", is_flag=True, help="Show every candidate, not just --top.")
@executor_options
@click.pass_context
def advise_command(
    ctx,
    scenario_file,
    top,
    as_json,
    overrides,
    workers,
    out_dir,
    no_record,
    show_all,
    backend,
    address,
):
    """Search every API provider, cloud GPU offer and purchase option in the warehouse for the
    cheapest way to serve SCENARIO.toml's workload within its SLO.

    Candidates are screened analytically, the shortlist is simulated with the scenario's
    replications and seed (the same fleet code as `sim run`), and all are ranked. The scenario may
    name no fleets; an optional [advise] table constrains the search (docs/advise.md).

    Example:

    \b
        sim advise scenarios/diurnal_day.toml --top 10 --json
        sim advise scenarios/peak.toml --set advise.providers='["aws","gcp","together_ai"]'
    """
    from sim.advise.output import to_json, write_run_dir
    from sim.advise.search import advise

    for name, value in (("--top", top), ("--workers", workers)):
        if value is not None and value < 1:
            raise InputError(name, None, f"must be >= 1, got {value}")
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    executor = make_executor(backend, address, workers)
    console = Console(stderr=True)
    db = (ctx.obj or {}).get("db")
    advice = advise(
        scenario_file,
        list(overrides),
        top=top,
        workers=workers,
        db_path=db,
        progress=lambda msg: console.print(msg),
        executor=executor,
    )
    run_dir = write_run_dir(advice, out_dir)
    recorded = None if no_record else record(advice, db, run_dir)
    # Every simulated candidate ranks above the unsimulated ones; show them all.
    shown = None if show_all else max(top or 10, advice.simulated)
    payload = to_json(advice, shown)
    payload["run_dir"] = str(run_dir)
    payload["recorded_run_id"] = recorded
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    out = Console(width=200)
    out.print(advice_table(payload))
    out.print("* screen estimate, not simulated")
    for note in advice.notes:
        out.print(f"note: {note}")
    out.print(f"run directory: {run_dir} (advice.json, advice.parquet, advice.html)")
    if recorded:
        out.print(f"recorded as run_id {recorded}")
