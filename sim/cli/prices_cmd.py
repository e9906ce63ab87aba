"""`sim prices ...`: list current or past prices, show a SKU's history, write a snapshot.

Other modules attach more commands (refresh, reparse, schedule) to the `prices` group.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import polars as pl

from sim.cli import cli
from warehouse.checks import LEVELS
from warehouse.db import open_warehouse
from warehouse.output import FORMATS, render
from warehouse.records import KINDS

_LIST_COLUMNS = (
    "kind",
    "provider",
    "sku",
    "region",
    "term",
    "unit",
    "tier_min_tokens",
    "price",
    "currency",
    "gpu_model",
    "gpu_count",
    "source",
    "valid_from",
    "age_days",
    "quarantined",
)
_HISTORY_COLUMNS = (
    "provider",
    "sku",
    "region",
    "term",
    "unit",
    "tier_min_tokens",
    "price",
    "upfront",
    "currency",
    "valid_from",
    "valid_to",
    "observed_at_quality",
    "last_seen",
    "age_days",
    "quarantined",
    "source",
)

_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; csv, or json (an array of row objects) for programs.",
)


@cli.group("prices")
def prices() -> None:
    """Prices in the warehouse: list them, show their history, refresh them.

    Example:

    \b
        sim prices list --kind gpu_instance --gpu H100
    """


@prices.command("list")
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="Only this kind of price.")
@click.option("--provider", help="Only this provider, e.g. openai, aws, lambda.")
@click.option("--gpu", help="Only this GPU model; H100 also finds H100-SXM and H100-PCIE.")
@click.option("--sku", help="Only this model id or instance type.")
@click.option(
    "--as-of",
    "as_of",
    help="Prices in effect at this UTC date (00:00) or ISO timestamp, instead of now.",
)
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(
        ["price", "age_days", "provider", "sku", "region", "valid_from", "last_seen"]
    ),
    default=None,
    help="Sort by this column, lowest first (default: the warehouse's order).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Rows to print (default 50 in a table, all in csv/json; 0 = all).",
)
@_format_option
@click.pass_context
def list_prices(ctx, kind, provider, gpu, sku, as_of, sort_by, limit, fmt) -> None:
    """List the prices in effect now (or at --as-of), one row per price.

    `age_days` is how many days before now (or --as-of) the source last showed the price;
    `quarantined` rows broke an integrity rule (see `sim prices check`) and are never a cost.

    Example:

    \b
        sim prices list --provider openai --as-of 2025-03-01 --format csv
        sim prices list --kind gpu_instance --gpu H100 --sort price --limit 10
    """
    wh = open_warehouse(ctx, read_only=True)
    df = wh.prices(as_of, kind=kind, provider=provider, gpu_model=gpu, sku=sku)
    if sort_by is not None:
        df = df.sort(sort_by, nulls_last=True, maintain_order=True)
    if limit is None:
        limit = 50 if fmt == "table" else 0
    more = df.height - limit if limit and df.height > limit else 0
    if more:
        df = df.head(limit)
    click.echo(render(df.select(_LIST_COLUMNS) if fmt == "table" else df, fmt))
    if more:
        # On stderr for csv/json, so the data stays parseable.
        click.echo(f"{more:,} more; use --limit N (0 = all)", err=fmt != "table")


@prices.command("history")
@click.argument("sku")
@click.option("--provider", help="Only this provider's SKU of that name.")
@_format_option
@click.pass_context
def history(ctx, sku, provider, fmt) -> None:
    """Show every price period of SKU: when each price started, ended and was last seen.

    Example:

    \b
        sim prices history gpu_8x_h100_sxm5 --provider lambda
    """
    wh = open_warehouse(ctx, read_only=True)
    df = wh.price_history(sku, provider=provider)
    if df.is_empty():
        which = f"SKU {sku!r}" + (f" from provider {provider!r}" if provider else "")
        raise click.UsageError(f"no prices stored for {which}")
    click.echo(render(df.select(_HISTORY_COLUMNS) if fmt == "table" else df, fmt))


@prices.command("snapshot")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write manifest.json and periods.parquet into.",
)
@click.pass_context
def snapshot(ctx, out_dir: Path) -> None:
    """Write all price periods as a snapshot that a fresh install can load offline.

    Example:

    \b
        sim prices snapshot --out warehouse/snapshot
    """
    wh = open_warehouse(ctx, read_only=True)
    manifest = wh.write_snapshot(out_dir)
    click.echo(f"wrote {manifest}")


@prices.command("check")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="table for people, json (an array of findings) for programs.",
)
@click.pass_context
def check(ctx, fmt) -> None:
    """Check every stored price against the integrity rules; exit 1 if any error is found.

    Rules (docs/pricing.md): spot and committed prices at or below on-demand, no free price
    used as a cost, USD per GPU-hour within bounds per GPU model, no jump above 3x between two
    runs, API prices of two sources within 25%, every GPU name known. Error-level findings
    quarantine their rows: kept and listed, never used as a cost.

    Example:

    \b
        sim prices check --format json
    """
    wh = open_warehouse(ctx, read_only=True)
    findings = wh.check()
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], default=str, indent=1))
    else:
        columns = ("level", "rule", "source", "provider", "sku", "region", "term", "message")
        frame = pl.DataFrame(
            [{c: f.as_dict()[c] for c in columns} for f in findings],
            schema=dict.fromkeys(columns, pl.String),
        )
        click.echo(render(frame, "table"))
        counts = {level: sum(f.level == level for f in findings) for level in LEVELS}
        click.echo(", ".join(f"{n} {level}" for level, n in counts.items()))
    ctx.exit(1 if any(f.level == "error" for f in findings) else 0)
