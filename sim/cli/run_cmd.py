"""`sim run`: simulate a scenario file and print which fleet is cheapest within the SLO."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sim.cli import cli
from sim.cli.options import executor_options, make_executor
from sim.errors import InputError
from sim.summary import RunSummary, Stat, slo_failures

# Wide enough for the table with a two-term SLO miss on one line; fixed so that piped output
# (CI logs, files) reads the same as a terminal's.
CONSOLE_WIDTH = 172


def _money(stat: Stat) -> str:
    if stat.mean is None:
        return "-"
    text = f"${stat.mean:,.2f}"
    if stat.ci95:
        text += f" ± {(stat.ci95[1] - stat.ci95[0]) / 2:,.2f}"
    return text


def _num(value, fmt: str = "{:,.2f}", prefix: str = "") -> str:
    return "-" if value is None else prefix + fmt.format(value)


def summary_table(summary: RunSummary) -> Table:
    """One row per fleet: cost with its 95% CI half-width, unit costs, latencies, SLO verdict."""
    n = summary.replications
    span = summary.workload.duration_s.mean
    span_text = f", {span / 3600:.3g} h of traffic" if span else ""
    table = Table(
        title=f"{summary.scenario}: {n} replication{'s' if n != 1 else ''}{span_text}, prices as of {summary.price_as_of}",
        caption="$/month: the simulated span's cost rate x 730 h; $/Mtok: cost over input + output "
        "tokens served; uncertain: the SLO verdict flips when step times move across the serving "
        "model's held-out error; windows: how many broke the SLO (latency percentiles of the requests "
        "finishing in each window) of those in which requests finished",
    )
    for header in (
        "fleet",
        "kind",
        "total cost (95% CI)",
        "$/month",
        "$/Mtok",
        "$/1k req",
        "TTFT p99",
        "TPOT p99",
        "E2E p99",
        "success",
        "windows",
        "SLO",
    ):
        table.add_column(header, justify="left" if header in ("fleet", "kind", "SLO") else "right")
    for f in summary.fleets:
        failed = slo_failures(f, summary.slo)
        table.add_row(
            f.name,
            f.kind,
            _money(f.total_cost_usd),
            _num(f.usd_per_month.mean, "{:,.0f}", prefix="$"),
            _num(f.usd_per_mtok.mean, prefix="$"),
            _num(f.usd_per_1k_requests.mean, prefix="$"),
            _num(f.latency("ttft", "p99"), "{:.2f} s"),
            _num(f.latency("tpot", "p99"), "{:.3f} s"),
            _num(f.latency("e2e", "p99"), "{:.1f} s"),
            _num(f.success_rate.mean, "{:.1%}"),
            _windows(f.slo_windows),
            _verdict(f.meets_slo, failed, f.slo_robust),
        )
    return table


def _verdict(meets: bool, failed: list[str], robust: str | None) -> str:
    text = "[green]met[/green]" if meets else f"[red]missed[/red] ({', '.join(failed)})"
    if robust == "uncertain":
        text += " [yellow]uncertain[/yellow]"  # the verdict flips within the model's error
    return text


def _windows(windows) -> str:
    """Windows that broke the SLO, of those judged: a run can meet its SLO overall and still
    break it for minutes (a cold start), which one p99 over the run hides."""
    if windows is None:
        return "-"
    text = f"{windows.missed:,.0f} of {windows.judged:,.0f}"
    return f"[yellow]{text}[/yellow]" if windows.missed > 0 else text


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def fleet_lines(summary: RunSummary) -> list[str]:
    """Under the table, per GPU fleet: how full it was and what happened to it (events that
    did not happen are left out)."""
    lines = []
    for f in summary.fleets:
        u = f.utilisation
        if u is not None:
            rate = ""
            if u.output_tokens_per_s is not None and u.capacity_output_tokens_per_s:
                rate = (
                    f", {u.output_tokens_per_s:,.0f} of {u.capacity_output_tokens_per_s:,.0f} "
                    f"output tok/s ({u.output_tokens_per_s / u.capacity_output_tokens_per_s:.0%})"
                )
            lines.append(
                f"utilisation: {f.name}: busy {_pct(u.busy_fraction)}, batch "
                f"{_pct(u.batch_occupancy)}, KV {_pct(u.kv_occupancy)}{rate}"
            )
        happened = [
            f"{label} {value:,.3g}"
            for label, value in (
                ("scale-ups", f.events.scale_up),
                ("scale-downs", f.events.scale_down),
                ("cold starts", f.events.cold_starts),
                ("preemptions", f.events.preemptions),
                ("recomputes", f.events.recomputes),
                ("spot kills", f.events.spot_kills),
                ("throttled", f.events.throttled),
                ("retries", f.events.retries),
            )
            if value
        ]
        wait = f.events.cold_start_wait_s_p99
        if wait is not None:
            happened.append(f"p99 wait for a cold start {wait:,.1f} s")
        if happened:
            lines.append(f"events: {f.name}: " + ", ".join(happened))
        lines += _pool_lines(f)
        lines += _cache_lines(f)
    return lines


def _pool_lines(f) -> list[str]:
    """A disaggregated fleet's pools (which one is the bottleneck) and its KV link."""
    if not f.pools:
        return []
    parts = [
        f"{name} {p.replicas_launched:,.3g} x {p.gpu} tp{p.tp} busy {_pct(p.busy_fraction)}, "
        f"${p.cost_usd.mean or 0:,.2f}"
        for name, p in f.pools.items()
    ]
    link = f.kv_link
    if link is not None:
        parts.append(
            f"KV link {link.kind} {link.gbps:,.0f} GB/s: {link.transfers:,.0f} transfers, "
            f"mean {link.mean_transfer_s * 1000:,.2f} ms"
        )
    return [f"pools: {f.name}: " + "; ".join(parts)]


def _cache_lines(f) -> list[str]:
    """What a fleet's prompt caches did, when they did anything (summary.json has it always)."""
    out = []
    p = f.prefix_cache
    if p is not None and (p.prefix_hit_rate_tokens.mean or p.prefix_evictions.mean):
        out.append(
            f"prefix cache: {f.name}: {_pct(p.prefix_hit_rate_tokens.mean)} of prompt tokens and "
            f"{_pct(p.prefix_hit_rate_requests.mean)} of requests hit, "
            f"{p.prefix_evictions.mean or 0:,.0f} blocks evicted, "
            f"{p.prefix_gpu_s_saved.mean or 0:,.0f} prefill GPU-s saved"
        )
    a = f.api_cache
    if a is not None and (a.cached_input_tokens.mean or a.cache_write_tokens.mean):
        out.append(
            f"prompt cache: {f.name}: {(a.cached_input_tokens.mean or 0) / 1e6:,.3g}M input "
            f"tokens billed as cached, {(a.cache_write_tokens.mean or 0) / 1e6:,.3g}M as cache writes"
        )
    return out


def _rows_note(requests: str) -> str:
    from sim.engine.rows import parse_requests_option

    mode, n = parse_requests_option(requests)
    if mode == "none":
        return "no requests.parquet: --requests none"
    if mode == "all":
        return "requests.parquet: every request"
    return f"requests.parquet: a uniform sample of up to {n:,} requests per fleet and replication"


def verdict(summary: RunSummary) -> str:
    slo = ", ".join(f"{k} <= {v:g}" for k, v in summary.slo.targets_s.items())
    rate = f"success >= {summary.slo.min_success_rate:.0%}"
    slo = f"{slo}, {rate}" if slo else rate
    best = summary.cheapest_meeting_slo
    if best is None:
        return f"No fleet meets the SLO ({slo})."
    return f"Cheapest fleet meeting the SLO ({slo}): {best}"


@cli.command("run")
@click.argument("scenario_file", metavar="SCENARIO.toml", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default runs/<name>-<UTC timestamp>/).",
)
@click.option("--seed", type=int, default=None, help="Master seed (default: [scenario] seed).")
@click.option(
    "--replications",
    "-n",
    type=int,
    default=None,
    help="Replications (default: [scenario] replications).",
)
@click.option(
    "--workers",
    "-j",
    type=int,
    default=None,
    help="Worker processes (default: one per core, at most one per task: a fleet of a replication).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario key by dotted path; repeatable. fleet.N is the 0-based fleet index or its name.",
)
@click.option("--no-record", is_flag=True, help="Do not record the run in the warehouse.")
@click.option("--no-report", is_flag=True, help="Do not write the HTML report.")
@click.option(
    "--no-robust",
    is_flag=True,
    help="Skip re-judging GPU fleets at the edges of the serving model's error (slo_robust).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--requests",
    "requests",
    default="sample:100000",
    show_default=True,
    metavar="all|sample:N|none",
    help="Rows of requests.parquet: every request, a uniform sample of N per fleet and "
    "replication, or no file. Summaries and time series always use every request.",
)
@executor_options
@click.pass_context
def run_command(
    ctx,
    scenario_file,
    out_dir,
    seed,
    replications,
    workers,
    overrides,
    no_record,
    no_report,
    no_robust,
    quiet,
    requests,
    backend,
    address,
):
    """Simulate SCENARIO.toml against every fleet in it and compare cost and latency.

    Writes scenario.resolved.json, requests.parquet, timeseries.parquet, bands.parquet and
    summary.json into the run directory, records the run in the warehouse (tables sim_runs,
    sim_summaries, sim_timeseries) and prints a summary naming the cheapest fleet that meets
    the SLO.

    Example:

    \b
        sim run scenarios/peak.toml --replications 3 --set workload.rate_scale=2
        sim run scenarios/baseline.toml --set fleet.cloud-8xh100.max_replicas=4 --out runs/try1
    """
    from sim.engine.rows import parse_requests_option
    from sim.run import run_scenario
    from sim.scenario import load_scenario

    if replications is not None and replications < 1:
        raise InputError("--replications", None, f"must be >= 1, got {replications}")
    try:
        parse_requests_option(requests)
    except ValueError as exc:
        raise InputError("--requests", None, str(exc).partition(": ")[2]) from None
    executor = None  # run_scenario's default: one process per core, at most one per task
    if (backend, address, workers) != ("process", None, None):
        executor = make_executor(backend, address, workers)
    scenario = load_scenario(scenario_file, list(overrides))
    n = replications or scenario.replications
    console = Console(stderr=True)
    show_progress = not quiet and sys.stderr.isatty()
    db = (ctx.obj or {}).get("db")
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"simulating {scenario.name}", total=n * len(scenario.fleets))
            out = run_scenario(
                scenario,
                out_dir=out_dir,
                seed=seed,
                replications=n,
                workers=workers,
                record=not no_record,
                db_path=db,
                robust=not no_robust,
                progress=lambda done, _total: bar.advance(task, done),
                executor=executor,
                requests=requests,
            )
    else:
        out = run_scenario(
            scenario,
            out_dir=out_dir,
            seed=seed,
            replications=n,
            workers=workers,
            record=not no_record,
            db_path=db,
            robust=not no_robust,
            executor=executor,
            requests=requests,
        )
    stdout = Console(width=CONSOLE_WIDTH)
    for line in out.summary.warnings:
        stdout.print(line, markup=False)
    stdout.print(summary_table(out.summary))
    for line in fleet_lines(out.summary):
        stdout.print(line, markup=False)
    for fleet in out.summary.fleets:
        if fleet.slo_windows is not None and fleet.slo_windows.missed > 0:
            stdout.print(f"flag: {fleet.name}: {fleet.slo_windows.text()}", markup=False)
    stdout.print(verdict(out.summary))
    for name, note in out.summary.notes():
        stdout.print(f"note: {name}: {note}", markup=False)
    if out.summary.engine_path == "streaming":
        stdout.print(
            "engine path: streaming (aggregated per window as the run went; latency percentiles "
            "from sketches, within 1%)",
            markup=False,
        )
    stdout.print(f"run directory: {out.run_dir} ({_rows_note(requests)})")
    if out.recorded:
        stdout.print(f"recorded as run_id {out.run_id}")
    if not no_report:
        from sim.report import write_report

        report_path = write_report(out.run_dir, db_path=out.db_path)
        if report_path is not None:
            stdout.print(f"report: {report_path}")
