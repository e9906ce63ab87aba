"""`sim sql`: run read-only SQL against the price warehouse."""

from __future__ import annotations

import click

from sim.cli import cli
from warehouse.db import open_warehouse
from warehouse.output import FORMATS, render


@cli.command("sql")
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; csv, or json (an array of row objects) for programs.",
)
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str) -> None:
    """Run read-only SQL (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) on the warehouse.

    Writes (INSERT, UPDATE, COPY, ATTACH, ...) are refused with exit code 2. Views to query:
    prices, price_history, gpu_offers, api_prices, scrape_runs; table macros prices_as_of(ts),
    gpu_offers_as_of(ts), api_prices_as_of(ts). Columns are described in docs/warehouse.md.

    Example:

    \b
        sim sql "SELECT provider, sku, usd_per_gpu_hour FROM gpu_offers_as_of('2025-03-01') WHERE gpu_model = 'H100-SXM' ORDER BY 3" --format csv
    """
    wh = open_warehouse(ctx, read_only=True)
    click.echo(render(wh.query(query), fmt))
