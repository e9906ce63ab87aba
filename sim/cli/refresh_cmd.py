"""`sim prices refresh | reparse | schedule`: fetch real prices into the warehouse, once or nightly."""

from __future__ import annotations

import logging
import sys

import click
from rich.console import Console
from rich.table import Table

from scrapers.refresh import check_sources, refresh, reparse
from scrapers.registry import SOURCES
from sim.cli.prices_cmd import prices
from warehouse import open_warehouse


def _is_skip(result) -> bool:
    return result.status == "failed" and (result.error or "").startswith("skipped:")


def exit_code(results) -> int:
    """0 when every source that ran succeeded, 1 when some failed, 2 when none succeeded.

    A skipped source (e.g. no API key set) is neither: it did not run.
    """
    ran = [r for r in results if not _is_skip(r)]
    ok = sum(r.status == "ok" for r in ran)
    if not ran or ok == 0:
        return 2
    return 0 if ok == len(ran) else 1


def _summary(results) -> Table:
    table = Table(title="price refresh")
    for column, justify in (
        ("source", "left"),
        ("status", "left"),
        ("run", "right"),
        ("rows seen", "right"),
        ("changed", "right"),
        ("reason", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    for r in results:
        status = "skipped" if _is_skip(r) else r.status
        table.add_row(
            r.source, status, str(r.run_id), str(r.rows_seen), str(r.rows_changed), r.error or ""
        )
    return table


def _print_progress(console: Console):
    def progress(name: str, stage: str, result) -> None:
        if stage == "start":
            console.print(f"{name}: fetching ...")
        else:
            status = "skipped" if _is_skip(result) else result.status
            detail = f"{result.rows_seen} rows seen, {result.rows_changed} changed"
            console.print(
                f"{name}: {status}, {detail}" + (f" ({result.error})" if result.error else "")
            )

    return progress


def _checked(sources: tuple[str, ...]) -> list[str]:
    try:
        return check_sources(list(sources))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--source") from None


_source_option = click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help=f"Only this source (repeatable). Known: {', '.join(SOURCES)}.",
)


@prices.command("refresh")
@_source_option
@click.pass_context
def refresh_command(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Fetch current prices from every source (or the named ones) into the warehouse.

    One run for cron or a systemd timer. After each source is stored the integrity rules run
    and their findings are kept in the `price_checks` table (summarised at the end). Each source is fetched, parsed and stored on its own,
    so one failing source never stops the others. Exit code 0 when all sources succeeded, 1 when
    some failed, 2 when none did (a source skipped for a missing API key counts as neither).
    Set INFERCOST_<NAME>_URL to point a source at another URL (e.g. a mirror or a test server).

    Example:

        sim prices refresh --source litellm --source openrouter
    """
    names = _checked(sources)
    console = Console()
    wh = open_warehouse(ctx)
    try:
        results = refresh(wh, names, on_progress=_print_progress(console))
        integrity = wh.check_summary()
    finally:
        wh.close()
    console.print(_summary(results))
    if integrity:
        console.print(
            "integrity: "
            + ", ".join(f"{n} {level}" for level, n in integrity.items())
            + " (error rows are quarantined; details: sim prices check)"
        )
    ctx.exit(exit_code(results))


@prices.command("reparse")
@click.argument("run_id", type=int)
@click.pass_context
def reparse_command(ctx: click.Context, run_id: int) -> None:
    """Re-parse the raw responses stored with scrape run RUN_ID using today's parsers.

    Use it after fixing a parser: the stored responses become a new run, observed when they were
    fetched. Find run ids with `sim sql "select * from scrape_runs order by run_id desc"`.

    Example:

        sim prices reparse 42
    """
    wh = open_warehouse(ctx)
    try:
        result = reparse(wh, run_id)
    finally:
        wh.close()
    Console().print(_summary([result]))
    ctx.exit(0 if result.status == "ok" else 1)


@prices.command("schedule")
@click.option(
    "--cron",
    default="0 2 * * *",
    show_default=True,
    help="When to refresh: a 5-field crontab expression in UTC.",
)
@click.option(
    "--interval-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Refresh every N seconds instead of on --cron (for tests and demos).",
)
@click.option("--run-now", is_flag=True, help="Also refresh once right away.")
@_source_option
@click.pass_context
def schedule_command(ctx, cron: str, interval_s: float | None, run_now: bool, sources) -> None:
    """Keep running and refresh prices on a schedule (nightly at 02:00 UTC by default).

    Missed runs (machine asleep) coalesce into one, two refreshes never overlap, a failing
    source is logged and retried next time, and SIGTERM or Ctrl-C stop it cleanly once the
    refresh in progress has finished. Logs go to stderr.

    Example:

        sim prices schedule --cron "30 3 * * *" --source litellm
    """
    from scrapers.schedule import make_trigger, run_schedule

    names = _checked(sources)
    try:
        make_trigger(cron, interval_s)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cron") from None
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # apscheduler logs every tick at INFO; its warnings and errors are enough.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    root_obj = ctx.find_root().obj or {}
    db = root_obj.get("db")

    def job() -> str:
        # Open the warehouse per run so its write lock is free between refreshes.
        wh = open_warehouse(db)
        try:
            results = refresh(wh, names)
        finally:
            wh.close()
        counts: dict[str, int] = {}
        for r in results:
            status = "skipped" if _is_skip(r) else r.status
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))

    run_schedule(job, cron=cron, interval_s=interval_s, run_now=run_now)
