"""Break-even and sweep on a tiny real scenario (tests/analysis/data/tiny.toml), through sim.run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sim.analysis.breakeven import breakeven, crossovers
from sim.analysis.replay import replay, verdicts, write_replay
from sim.analysis.runner import Simulate, simulate_summary
from sim.analysis.summary import fleet_rows
from sim.analysis.sweep import parse_grid, sweep, sweep_table
from sim.report.html import write_report
from sim.scenario import load_scenario

DATA = Path(__file__).parent / "data"
TINY = load_scenario(DATA / "tiny.toml")
TINY_REPLAY = load_scenario(DATA / "tiny_replay.toml")


def test_real_breakeven_matches_the_linear_cost_model():
    # At 1x: the owned H100 costs F for the 2 minutes whatever the load; the API costs c per request.
    base = {
        r["fleet"]: r for r in fleet_rows(simulate_summary(TINY, seed=3, replications=1, workers=1))
    }
    fixed_usd = base["owned"]["total_cost_usd"]
    api_usd_at_1x = base["api"]["total_cost_usd"]
    expected = (
        fixed_usd / api_usd_at_1x
    )  # the API costs as much as the owned fleet at this multiplier
    df = breakeven(TINY, [expected / 2, expected * 2], seed=3, replications=1, workers=1)
    (crossing,) = crossovers(df)
    assert (crossing["from_fleet"], crossing["to_fleet"], crossing["reason"]) == (
        "api",
        "owned",
        "cost",
    )
    # Poisson counts and token lengths vary between scales, and the owned fleet's power grows a
    # little with load: 10% covers both at this size.
    assert crossing["scale"] == pytest.approx(expected, rel=0.10)


def test_real_sweep_over_servers_doubles_the_owned_fleets_cost():
    results = sweep(
        TINY, parse_grid(["fleet.owned.servers=1,2"]), seed=3, replications=1, workers=1
    )
    df = sweep_table(results)
    owned = df.filter(df["fleet"] == "owned").sort("point")["total_cost_usd"].to_list()
    assert owned[1] / owned[0] == pytest.approx(
        2.0, rel=0.05
    )  # capex, colo and idle power per server
    api = df.filter(df["fleet"] == "api")["total_cost_usd"].to_list()
    assert api[0] == api[1]  # same seed, same traffic: the API fleet is untouched by the grid


def test_real_replay_recosts_with_the_prices_of_each_date(tmp_path):
    from datetime import UTC, datetime
    from decimal import Decimal

    from warehouse.db import Warehouse
    from warehouse.records import PriceRecord

    # The API's token price: 6 $/Mtok until 2025-06-01, then 0.1 $/Mtok (a constructed 60x cut).
    periods = [
        (datetime(2025, 1, 1), datetime(2025, 6, 1), Decimal("6")),
        (datetime(2025, 6, 1), None, Decimal("0.1")),
    ]
    records = [
        PriceRecord(
            source="test",
            kind="api_token",
            provider="x",
            sku="m",
            region="",
            term="on_demand",
            unit=unit,
            price=price,
            valid_from=start,
            valid_to=end,
        )  # fmt: skip
        for start, end, price in periods
        for unit in ("usd_per_mtok_input", "usd_per_mtok_output")
    ]
    wh = Warehouse(tmp_path / "wh.duckdb", load_snapshot=False)
    wh.ingest_run("test", records, started_at=datetime(2025, 7, 1, tzinfo=UTC))
    evaluate = Simulate(warehouse=wh)
    df = replay(
        TINY_REPLAY, ["2025-03-01", "2025-07-01"], seed=3, replications=1, evaluate=evaluate
    )
    api = df.filter(pl.col("fleet") == "api")["total_cost_usd"].to_list()
    assert api[0] / api[1] == pytest.approx(60.0)  # same traffic and seed: only the price moved
    owned = df.filter(pl.col("fleet") == "owned")["total_cost_usd"].to_list()
    assert owned[0] == owned[1]
    assert verdicts(df) == [("2025-03-01", "owned"), ("2025-07-01", "api")]
    provenance = [json.loads(p) for p in df.filter(pl.col("fleet") == "api")["prices_json"]]
    assert [p["usd_per_mtok_output"] for p in provenance] == [6.0, 0.1]
    # The replay's report draws the API's price periods from the same warehouse.
    write_replay(tmp_path / "out", df)
    page = write_report(tmp_path / "out", warehouse=wh).read_text()
    assert 'data-chart="replay"' in page and 'data-chart="price_history"' in page
