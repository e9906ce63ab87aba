"""`sim breakeven`, `sim sweep`, `sim replay`, `sim compare`, `sim report` through click's runner."""

from __future__ import annotations

import json

import polars as pl
import pytest
from analysis_fakes import ApiVersusOwned, case_scenario
from click.testing import CliRunner

from sim.cli import cli
from sim.report.synthetic import write_synthetic_run

COMMANDS = ("report", "compare", "breakeven", "sweep", "replay")


@pytest.fixture
def scenario(tmp_path):
    return case_scenario(tmp_path, rate_scale=1.0).path


@pytest.fixture
def fake_sim(monkeypatch):
    case = ApiVersusOwned(usd_per_request=0.002, usd_per_hour=36.0, base_rps=2.0)
    monkeypatch.setattr("sim.cli.analysis_cmd._evaluate", lambda ctx, executor: case)
    return case


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_breakeven_prints_the_crossover_and_writes_its_files(scenario, fake_sim, tmp_path):
    out = tmp_path / "be"
    result = CliRunner().invoke(
        cli, ["breakeven", str(scenario), "--scale", "1,2,4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    # 36 / (3600 * 0.002 * 2) = 2.5x, interpolated between the 2x and 4x points.
    assert (
        "the cheapest fleet meeting the SLO goes from api to owned between 2x and 4x: costs cross;"
        " linear interpolation puts it near 2.5x" in result.output
    )
    assert "refine with --scale 2..4" in result.output
    assert pl.read_parquet(out / "breakeven.parquet").height == 6
    assert json.loads((out / "crossovers.json").read_text())[0]["scale"] == pytest.approx(2.5)
    page = (out / "report.html").read_text()
    assert 'data-chart="breakeven"' in page
    meta = json.loads((out / "analysis.json").read_text())
    assert meta["analysis"] == "breakeven" and meta["options"]["scale_text"] == "1,2,4"
    assert f"sim breakeven of <code>{scenario}</code>" in page


def test_breakeven_bad_scale_is_one_line_and_exit_2(scenario, fake_sim):
    result = CliRunner().invoke(cli, ["breakeven", str(scenario), "--scale", "5..1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --scale: range '5..1' must be 0 < low < high"
    ]


def test_sweep_writes_one_table(scenario, fake_sim, tmp_path):
    out = tmp_path / "sw"
    args = [
        "sweep",
        str(scenario),
        "--grid",
        "workload.rate_scale=1,4",
        "--no-record",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    df = pl.read_parquet(out / "sweep.parquet")
    assert df.height == 4
    assert df.filter(pl.col("cheapest"))["fleet"].to_list() == ["api", "owned"]
    page = (out / "report.html").read_text()
    assert 'data-chart="sweep"' in page and "<th>workload.rate_scale</th>" in page


def test_sweep_records_points_in_the_warehouse(scenario, fake_sim, tmp_path):
    db = tmp_path / "wh.duckdb"
    args = [
        "--db",
        str(db),
        "sweep",
        str(scenario),
        "--grid",
        "workload.rate_scale=1,4",
        "--out",
        str(tmp_path / "sw"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "recorded 2 points in the warehouse as sweep-" in result.output
    from warehouse.db import Warehouse

    with Warehouse(db, read_only=True) as wh:
        assert (
            wh.query("SELECT count(*) AS n FROM sim_runs WHERE run_id LIKE 'sweep-%'")["n"][0] == 2
        )


def test_replay_prints_the_verdict_per_date(scenario, fake_sim, tmp_path):
    out = tmp_path / "rp"
    result = CliRunner().invoke(
        cli, ["replay", str(scenario), "--as-of", "2025-01..2025-02,latest", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert fake_sim.dates == ["2025-01-01", "2025-02-01", "latest"]
    assert "latest: cheapest meeting the SLO is api" in result.output
    assert 'data-chart="replay"' in (out / "report.html").read_text()


def test_replay_bad_date_is_one_line_and_exit_2(scenario, fake_sim):
    result = CliRunner().invoke(cli, ["replay", str(scenario), "--as-of", "2025-02-30"])
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: --as-of: not a date (YYYY-MM-DD or YYYY-MM): '2025-02-30'"
    )


def test_compare_flags_a_verdict_change(tmp_path):
    a = write_synthetic_run(tmp_path / "a", replications=3, windows=6, seed=1)
    b = write_synthetic_run(
        tmp_path / "b", replications=3, windows=6, seed=1, meets_slo={"openai-api": False}
    )
    result = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        "VERDICT CHANGED: cheapest meeting the SLO was openai-api in A, is cloud-h100 in B"
    )
    as_json = json.loads(CliRunner().invoke(cli, ["compare", str(a), str(b), "--json"]).output)
    assert as_json["verdict"] == {"a": "openai-api", "b": "cloud-h100", "changed": True}


def test_report_command_rewrites_the_page(tmp_path):
    run = write_synthetic_run(tmp_path / "run", fleets=(("f", "cloud"),), replications=2, windows=3)
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.duckdb"), "report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run / "report.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["report", str(empty)])
    assert result.exit_code == 2 and result.output.startswith(f"error: {empty}: nothing to report")
