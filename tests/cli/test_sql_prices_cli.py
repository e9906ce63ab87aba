"""`sim sql` and `sim prices ...` through click's CliRunner, with exact output, plus the help check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import click
import pytest
from click.testing import CliRunner

from sim.cli import cli
from warehouse.db import Warehouse
from warehouse.records import PriceRecord

T1 = datetime(2025, 2, 1, 3, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 2, 3, 0, tzinfo=UTC)


def _gpu(price: str) -> PriceRecord:
    # Lambda's 8x H100 SXM5 at 23.92 USD/h is the skypilot-catalog v7 price; 19.99 is invented.
    return PriceRecord(
        "lambda",
        "gpu_instance",
        "lambda",
        "gpu_8x_h100_sxm5",
        "us-east-1",
        "on_demand",
        "usd_per_hour",
        Decimal(price),
        gpu_model="H100-SXM",
        gpu_count=8.0,
    )


def _api(unit: str, price: str) -> PriceRecord:
    return PriceRecord(
        "litellm", "api_token", "openai", "gpt-4o", "", "on_demand", unit, Decimal(price)
    )


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path, load_snapshot=False)
    wh.ingest_run("lambda", [_gpu("23.92")], started_at=T1, observed_at=T1)
    wh.ingest_run("lambda", [_gpu("19.99")], started_at=T2, observed_at=T2)
    api = [_api("usd_per_mtok_input", "2.5"), _api("usd_per_mtok_output", "10")]
    wh.ingest_run("litellm", api, started_at=T1, observed_at=T1)
    return str(path)


def run(db, *args):
    return CliRunner().invoke(cli, ["--db", db, *args], catch_exceptions=False)


def test_sql_csv_is_exact(db):
    result = run(
        db,
        "sql",
        "SELECT sku, price, valid_from FROM price_history ORDER BY valid_from",
        "--format",
        "csv",
    )
    assert result.exit_code == 0
    assert result.stdout == (
        "sku,price,valid_from\n"
        "gpu_8x_h100_sxm5,23.92,2025-02-01T03:00:00\n"
        "gpt-4o,2.5,2025-02-01T03:00:00\n"
        "gpt-4o,10,2025-02-01T03:00:00\n"
        "gpu_8x_h100_sxm5,19.99,2025-03-02T03:00:00\n"
    )


def test_sql_json_is_an_array_of_row_objects(db):
    result = run(
        db,
        "sql",
        "SELECT model, input_per_mtok, output_per_mtok, cached_input_per_mtok FROM api_prices",
        "--format",
        "json",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {
            "model": "gpt-4o",
            "input_per_mtok": 2.5,
            "output_per_mtok": 10,
            "cached_input_per_mtok": None,
        }
    ]


def test_sql_table_output(db):
    result = run(db, "sql", "SELECT sku, usd_per_gpu_hour FROM gpu_offers")
    assert result.exit_code == 0
    # 19.99 USD/h over 8 GPUs.
    assert result.stdout == (
        " sku              ┃ usd_per_gpu_hour\n"
        "━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━\n"
        " gpu_8x_h100_sxm5 │          2.49875\n"
        "(1 row)\n"
    )


@pytest.mark.parametrize(
    "sql", ["DELETE FROM price_periods", "DROP VIEW prices", "COPY scrape_runs TO 'x.csv'"]
)
def test_sql_refuses_writes_with_exit_2(db, sql):
    result = run(db, "sql", sql)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: SQL: ")
    assert "statements are refused" in result.stderr
    assert result.stdout == ""


def test_prices_list_as_of_boundaries(db):
    def price_on(day):
        out = run(db, "prices", "list", "--gpu", "H100", "--as-of", day, "--format", "csv")
        assert out.exit_code == 0, out.output
        return [line.split(",")[9] for line in out.stdout.splitlines()[1:]]

    assert price_on("2025-01-31") == []
    assert price_on("2025-03-02") == ["23.92"]  # 00:00 UTC: the 03:00 change is not in effect yet
    assert price_on("2025-03-02T03:00:00Z") == ["19.99"]
    assert price_on("2025-03-03") == ["19.99"]


def test_prices_list_shows_age_in_days_and_quarantine(db):
    out = run(
        db, "prices", "list", "--gpu", "H100", "--as-of", "2025-03-12T03:00:00Z", "--format", "json"
    )
    (row,) = json.loads(out.stdout)
    assert (row["age_days"], row["quarantined"]) == (10, False)  # last seen 2025-03-02 03:00
    table = run(db, "prices", "list", "--gpu", "H100")
    assert "age_days" in table.stdout and "quarantined" in table.stdout


def test_prices_check_on_a_clean_warehouse_exits_0(db):
    out = run(db, "prices", "check")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[-1] == "0 error, 0 warning, 0 info"


def test_prices_list_filters_by_kind_and_provider(db):
    result = run(db, "prices", "list", "--kind", "api_token", "--format", "csv")
    assert [line.split(",")[3] for line in result.stdout.splitlines()[1:]] == ["gpt-4o", "gpt-4o"]
    result = run(db, "prices", "list", "--provider", "nobody", "--format", "csv")
    assert result.stdout.splitlines()[1:] == []


def test_prices_list_bad_date_is_one_line_exit_2(db):
    result = run(db, "prices", "list", "--as-of", "March 1st")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: as_of: 'March 1st' is not a date (YYYY-MM-DD) or an ISO timestamp\n"
    )


def test_prices_history_shows_both_periods(db):
    result = run(db, "prices", "history", "gpu_8x_h100_sxm5", "--format", "csv")
    assert result.exit_code == 0
    rows = [line.split(",") for line in result.stdout.splitlines()[1:]]
    # columns 9, 18, 19: price, valid_from, valid_to
    assert [(r[9], r[17], r[18]) for r in rows] == [
        ("23.92", "2025-02-01T03:00:00", "2025-03-02T03:00:00"),
        ("19.99", "2025-03-02T03:00:00", ""),
    ]
    missing = run(db, "prices", "history", "no-such-sku")
    assert missing.exit_code == 2 and "no prices stored for SKU 'no-such-sku'" in missing.stderr


def test_prices_snapshot_writes_a_loadable_snapshot(db, tmp_path):
    out = tmp_path / "snap"
    result = run(db, "prices", "snapshot", "--out", str(out))
    assert result.exit_code == 0
    assert result.stdout == f"wrote {out / 'manifest.json'}\n"
    fresh = Warehouse(tmp_path / "fresh.duckdb", load_snapshot=False)
    assert fresh.load_snapshot(out).rows_seen == 4


def _walk(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, path + (name,))


def test_every_command_has_help_with_an_example():
    missing = []
    for path in [(), *(p for p, _ in _walk(cli))]:
        result = CliRunner().invoke(cli, [*path, "--help"])
        if result.exit_code != 0 or "Example:" not in result.output:
            missing.append(" ".join(path) or "sim")
    assert missing == []


def test_prices_list_limit_sort_and_count_of_the_rest(tmp_path):
    """On the shipped snapshot: --limit 5 prints 5 rows and says how many more there are."""
    db = str(tmp_path / "snap.duckdb")
    listed = run(db, "prices", "list", "--kind", "gpu_instance", "--format", "json")
    every = json.loads(listed.stdout)
    result = run(db, "prices", "list", "--kind", "gpu_instance", "--limit", "5")
    assert result.exit_code == 0
    assert "(5 rows)" in result.output
    assert result.output.strip().endswith(f"{len(every) - 5:,} more; use --limit N (0 = all)")
    args = ["prices", "list", "--kind", "gpu_instance", "--sort", "price", "--limit", "3"]
    sorted_run = run(db, *args, "--format", "json")
    # The count of the rest goes to stderr after the JSON array (the runner may mix the two).
    text = sorted_run.output
    cheapest = json.loads(text[: text.rindex("]") + 1])
    assert text.strip().endswith(f"{len(every) - 3:,} more; use --limit N (0 = all)")
    prices = sorted(float(r["price"]) for r in every)
    assert [float(r["price"]) for r in cheapest] == prices[:3]
