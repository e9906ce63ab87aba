"""`sim trace ...`: inspect recorded traffic (a thin layer over sim.traffic)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import click
import numpy as np

from sim.cli import cli
from sim.errors import InputError
from sim.traffic import (
    FORMATS,
    build_workload,
    builtin_traces,
    load_trace,
    resolve_trace_path,
    trace_stats,
)


@cli.group()
def trace() -> None:
    """Inspect LLM request traces (Azure, BurstGPT, Mooncake, generic CSV/JSONL/Parquet).

    Example:

        sim trace stats builtin:azure2023_code
    """


def _mapping(columns: tuple[str, ...]) -> dict | None:
    mapping = {}
    for item in columns:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError("--column", key or item, f"expected KEY=COLUMN, got {item!r}")
        mapping[key.strip()] = value.strip()
    return mapping or None


@trace.command("stats")
@click.argument("file")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Trace format; auto-detected from the header by default.",
)
@click.option(
    "--model", default=None, help="BurstGPT only: keep rows of this Model (e.g. ChatGPT)."
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="KEY=COLUMN",
    help="Generic formats: map timestamp, prompt_tokens, output_tokens, timestamp_unit "
    "(s, ms, us or datetime). Repeatable.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Scenario files only: seed for generators and random transforms.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(
    fmt: str, file: str, model: str | None, columns: tuple[str, ...], seed: int, as_json: bool
) -> None:
    """Requests, span, mean and peak rates, burstiness and token percentiles of FILE.

    FILE is a trace path, builtin:NAME (builtin:azure2023_code, builtin:azure2023_conv), or a
    scenario .toml, whose [workload] table is built (generator and transforms included).

    Example:

    \b
        sim trace stats builtin:azure2023_conv --json
        sim trace stats BurstGPT_1.csv --model ChatGPT
        sim trace stats scenarios/peak.toml --seed 1
        sim trace stats calls.csv --column timestamp=ts --column prompt_tokens=in \\
            --column output_tokens=out --column timestamp_unit=ms
    """
    if file.endswith(".toml"):
        w = _scenario_workload(Path(file), seed)
    else:
        path = resolve_trace_path(file)
        w = load_trace(path, format=fmt, model=model, mapping=_mapping(columns))
    result = trace_stats(w)
    result["format"] = w.meta.get("format") or w.name
    for key in ("dropped_failed", "dropped_empty_prompt"):
        if key in w.meta:
            result[key] = w.meta[key]
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(_render(file, result))


MAX_SCENARIO_BYTES = 1 << 20  # a scenario is a few KiB of TOML


def _scenario_workload(path: Path, seed: int):
    # Checked before opening: a FIFO would block and /dev/zero never ends.
    try:
        info = os.stat(path)
    except OSError:
        raise InputError(str(path), None, "scenario file not found") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SCENARIO_BYTES:
        raise InputError(str(path), None, "not a regular file of at most 1 MiB")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(str(path), None, f"not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise InputError(str(path), None, "not valid TOML: nested too deep") from None
    if "workload" not in raw:
        raise InputError(str(path), "workload", "required table is missing")
    rng = np.random.default_rng(seed)
    return build_workload(raw["workload"], base_dir=path.parent, rng=rng, source=str(path))


def _render(file: str, s: dict) -> str:
    lines = [
        f"trace                {file} ({s['format']})",
        f"requests             {s['requests']:,}",
        f"span                 {s['span_s']:,.1f} s ({s['span_s'] / 3600:.2f} h)",
        f"mean rate            {s['mean_rate_per_s']:.3f} req/s",
        f"peak rate (60 s)     {s['peak_rate_per_s']:.3f} req/s ({s['peak_to_mean']:.2f}x mean)",
        f"busiest minute       {s['busiest_minute_ratio']:.2f}x mean minute "
        f"({s['empty_minutes']} empty minutes)",
        f"inter-arrival CV     {s['interarrival_cv']:.2f} (Poisson = 1)",
        f"Fano factor (60 s)   {s['fano_60s']:.2f} (Poisson = 1)",
    ]
    if "dropped_failed" in s:
        lines.append(f"dropped failed rows  {s['dropped_failed']:,} (Response tokens = 0)")
    if s.get("dropped_empty_prompt"):
        lines.append(f"dropped empty rows   {s['dropped_empty_prompt']:,} (Request tokens = 0)")
    if s.get("cached_prompt_share"):
        lines.append(f"prefix-cache hits    {100 * s['cached_prompt_share']:.1f}% of prompt tokens")
    lines.append("")
    lines.append(f"{'tokens':<8}{'mean':>10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}")
    for label, key in (("prompt", "prompt_tokens"), ("output", "output_tokens")):
        t = s[key]
        lines.append(
            f"{label:<8}{t['mean']:>10.1f}{t['p50']:>10.0f}{t['p90']:>10.0f}"
            f"{t['p99']:>10.0f}{t['max']:>10,}"
        )
    return "\n".join(lines)


@trace.command("list")
def list_builtin() -> None:
    """List the traces shipped with infercost (usable as builtin:NAME).

    Example:

        sim trace list
    """
    for name in builtin_traces():
        click.echo(f"builtin:{name}")
