"""Sweeps, price-date replay and run comparison on constructed inputs with known answers."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime

import pytest
from analysis_fakes import case_scenario, fleet, summary, value_at
from hypothesis import given
from hypothesis import strategies as st

from sim.analysis.compare import compare_runs, config_changes
from sim.analysis.replay import parse_dates, replay, verdicts
from sim.analysis.sweep import grid_points, parse_grid, record_sweep, sweep, sweep_table
from sim.errors import InputError
from sim.report.synthetic import write_synthetic_run


def grid_case(scenario, *, seed, replications, workers):
    """Cloud cost = 10 $ per replica allowed; it meets the SLO from 4 replicas on."""
    replicas = scenario.fleets[1].max_replicas
    assert replicas == int(value_at(scenario, "fleet.1.max_replicas"))  # a typed, validated copy
    scale = scenario.workload.rate_scale
    requests = 1000 * scale
    return summary(
        [
            fleet("api", "api", 0.05 * requests, requests),
            fleet("cloud", "cloud", 10.0 * replicas, requests, meets_slo=replicas >= 4),
        ],
        seed=seed,
        scenario="grid",
    )


def test_sweep_runs_the_cartesian_grid_in_order(tmp_path):
    axes = parse_grid(["fleet.1.max_replicas=2,4,8", "workload.rate_scale=1,2"])
    assert axes == [("fleet.1.max_replicas", ["2", "4", "8"]), ("workload.rate_scale", ["1", "2"])]
    assert len(grid_points(axes)) == 6
    results = sweep(case_scenario(tmp_path), axes, seed=3, evaluate=grid_case)
    df = sweep_table(results)
    assert df.height == 12  # 6 points x 2 fleets
    assert df["point"].unique().sort().to_list() == list(range(6))
    first = df.filter(df["point"] == 0)
    assert first["fleet.1.max_replicas"].to_list() == ["2", "2"] and first[
        "workload.rate_scale"
    ].to_list() == ["1", "1"]
    # 2 replicas misses the SLO: the API wins; at 4 replicas cloud costs 40 $ < API 50 $ (x1) / 100 $ (x2).
    winners = {
        (r["fleet.1.max_replicas"], r["workload.rate_scale"]): r["fleet"]
        for r in df.filter(df["cheapest"]).to_dicts()
    }
    assert winners == {
        ("2", "1"): "api", ("2", "2"): "api",
        ("4", "1"): "cloud", ("4", "2"): "cloud",
        ("8", "1"): "api", ("8", "2"): "cloud",
    }  # fmt: skip


def test_parse_grid_rejects_bad_specs():
    for bad in (["novalue"], ["key="], ["=1,2"], ["a=1", "a=2"], []):
        with pytest.raises(InputError):
            parse_grid(bad)


def test_record_sweep_stores_one_run_per_point(tmp_path):
    from warehouse.db import Warehouse

    results = sweep(
        case_scenario(tmp_path),
        parse_grid(["fleet.1.max_replicas=2,4", "workload.rate_scale=1"]),
        evaluate=grid_case,
    )
    started = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    with Warehouse(tmp_path / "wh.duckdb", load_snapshot=False) as wh:
        ids = record_sweep(wh, results, scenario="grid", started_at=started)
        assert ids == ["sweep-20250701T120000Z-0", "sweep-20250701T120000Z-1"]
        runs = wh.query("SELECT run_id, config_json FROM sim_runs ORDER BY run_id")
        assert runs["run_id"].to_list() == ids
        assert json.loads(runs["config_json"][1])["sweep"] == {
            "fleet.1.max_replicas": "4",
            "workload.rate_scale": "1",
        }
        cost = wh.query(
            "SELECT value FROM sim_summaries WHERE run_id = ? AND fleet = 'cloud' AND metric = 'total_cost_usd'",
            [ids[1]],
        )
        assert cost["value"].to_list() == [40.0]


def test_parse_dates():
    assert parse_dates("2025-01-01,2025-07-01,latest") == ["2025-01-01", "2025-07-01", "latest"]
    assert parse_dates("2025-01..2025-04") == [
        "2025-01-01",
        "2025-02-01",
        "2025-03-01",
        "2025-04-01",
    ]
    assert parse_dates("2025-01-31..2025-03-31") == ["2025-01-31", "2025-02-28", "2025-03-31"]
    assert parse_dates("2025-02-01,2025-02-01") == ["2025-02-01"]
    for bad in ("2025-13-01", "yesterday", "2025-05..2025-01", ""):
        with pytest.raises(InputError):
            parse_dates(bad)


@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    months=st.integers(0, 40),
)
def test_monthly_range_has_one_date_per_month(start, months):
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    end = date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
    dates = [date.fromisoformat(d) for d in parse_dates(f"{start}..{end}")]
    assert len(dates) == months + 1
    assert dates[0] == start and dates[-1] == end
    assert all(a < b for a, b in zip(dates, dates[1:], strict=False))
    assert all(
        d.day == start.day or d.day == calendar.monthrange(d.year, d.month)[1] for d in dates
    )


def test_replay_shows_the_verdict_moving_with_prices(tmp_path):
    # An API price cut on 2025-06-01 from 0.01 to 0.002 $/request; owned fleet 30 $ flat; 5000 requests.
    def priced(scenario, *, seed, replications, workers):
        as_of = scenario.price_as_of
        per_request = 0.01 if as_of != "latest" and as_of < "2025-06-01" else 0.002
        prices = {"source": "fake", "usd_per_request": per_request}
        api = fleet("api", "api", per_request * 5000, 5000, prices=prices)
        return summary([api, fleet("owned", "self_hosted", 30.0, 5000)])

    dates = ["2025-01-01", "2025-07-01", "latest"]
    df = replay(case_scenario(tmp_path), dates, evaluate=priced)
    assert verdicts(df) == [("2025-01-01", "owned"), ("2025-07-01", "api"), ("latest", "api")]
    api_costs = df.filter(df["fleet"] == "api")["total_cost_usd"].to_list()
    assert api_costs == pytest.approx([50.0, 10.0, 10.0])
    assert json.loads(df["prices_json"][0]) == {"source": "fake", "usd_per_request": 0.01}


def test_compare_reports_differences_and_verdict_change(tmp_path):
    a = write_synthetic_run(tmp_path / "a", replications=4, windows=10, seed=5)
    b = write_synthetic_run(
        tmp_path / "b", replications=4, windows=10, seed=5, cost_scale={"openai-api": 3.0}
    )
    df, verdict = compare_runs(a, b)
    api_cost = df.filter((df["fleet"] == "openai-api") & (df["metric"] == "total_cost_usd")).row(
        0, named=True
    )
    summary_a = json.loads((a / "summary.json").read_text())
    expected_a = summary_a["fleets"][0]["total_cost_usd"]["mean"]
    assert api_cost["a"] == pytest.approx(expected_a)
    assert api_cost["b"] == pytest.approx(3 * expected_a)  # same seed: only the cost factor differs
    assert api_cost["diff_pct"] == pytest.approx(200.0)
    assert api_cost["ci_separated"] is True
    unchanged = df.filter((df["fleet"] == "own-h100") & (df["metric"] == "total_cost_usd")).row(
        0, named=True
    )
    assert unchanged["diff"] == 0.0 and unchanged["ci_separated"] is False
    # Synthetic costs: API ~10.8 $ in A is cheapest; tripled (~32 $) it loses to cloud (~17 $).
    assert verdict == {"a": "openai-api", "b": "cloud-h100", "changed": True}


def test_compare_keeps_fleets_present_in_one_run_only(tmp_path):
    a = write_synthetic_run(
        tmp_path / "a", fleets=(("x", "api"), ("y", "cloud")), replications=2, windows=4
    )
    b = write_synthetic_run(tmp_path / "b", fleets=(("x", "api"),), replications=2, windows=4)
    df, _ = compare_runs(a, b)
    y = df.filter((df["fleet"] == "y") & (df["metric"] == "total_cost_usd")).row(0, named=True)
    assert y["a"] is not None and y["b"] is None and y["diff"] is None


def test_compare_rejects_a_directory_without_summary(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no summary.json"):
        compare_runs(tmp_path / "empty", tmp_path / "empty")


def test_config_changes_name_what_differs(tmp_path):
    a = write_synthetic_run(tmp_path / "a", replications=2, windows=3, seed=1)
    b = write_synthetic_run(tmp_path / "b", replications=3, windows=3, seed=1)
    doc = json.loads((b / "scenario.resolved.json").read_text())
    doc["fleets"][1]["max_replicas"] = 8  # as if run with --set fleet.cloud-h100.max_replicas=8
    doc["run_id"] = "another-run"  # differs between any two runs: not a configuration change
    (b / "scenario.resolved.json").write_text(json.dumps(doc))
    assert config_changes(a, b) == [
        {"key": "fleets.cloud-h100.max_replicas", "a": None, "b": 8},
        {"key": "replications", "a": 2, "b": 3},
    ]
    assert config_changes(a, a) == []
