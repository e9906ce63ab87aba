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

    Statements separated by `;` run in order and each result is shown (blank line between;
    with --format json, several statements give one array per statement inside an array).
    Writes (INSERT, UPDATE, COPY, ATTACH, ...) are refused with exit code 2, and DuckDB's own
    settings lock the connection: no file but the warehouse can be read or written and no
    extension loaded, whatever wraps the statement (EXPLAIN ANALYZE COPY too). Views to query:
    prices, price_history, gpu_offers, api_prices, scrape_runs; table macros prices_as_of(ts),
    gpu_offers_as_of(ts), api_prices_as_of(ts). Columns are described in docs/warehouse.md.

    Example:

    \b
        sim sql "SELECT provider, sku, usd_per_gpu_hour FROM gpu_offers_as_of('2025-03-01') WHERE gpu_model = 'H100-SXM' ORDER BY 3" --format csv
    """
    results = open_warehouse(ctx, read_only=True).statements(query)
    if fmt == "json" and len(results) > 1:
        click.echo("[\n" + ",\n".join(render(df, fmt) for df in results) + "\n]")
    else:
        click.echo("\n\n".join(render(df, fmt) for df in results))
