"""`sim run` through click's runner and one real subprocess: errors are one line, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim.run.replications
from sim.cli import cli

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_help_has_an_example():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "sim run scenarios/peak.toml" in result.output


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_replicas = 4",
            "replicas_mx = 4",
            "fleet[1].replicas_mx: unknown key (did you mean max_replicas?)",
        ),
        # workload keys are checked by sim.traffic when the workload is built
        ("rate_per_s = 2.0", "rate_per_s = -2.0", "workload.rate_per_s: must be >= 1e-06"),
        (
            "price_usd_per_hour = 98.32",
            "price_usd_per_hour = -1",
            "fleet[1].price_usd_per_hour: must be >= 0.01, got -1",
        ),
        ("tp = 4", 'tp = "4"', "fleet[1].tp: expected an integer, got str '4'"),
        ("seed = 7", "seed = = 7", "invalid TOML"),
    ],
)
def test_bad_scenarios_exit_2_with_one_line(write_toml, old, new, expected, tmp_path):
    path = write_toml(old, new)
    result = CliRunner().invoke(
        cli, ["run", str(path), "--no-record", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_bad_set_path_exits_2(small_toml):
    result = CliRunner().invoke(
        cli, ["run", str(small_toml), "--set", "fleet.7.tp=2", "--no-record"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: --set: fleet.7: index 7 out of range (0..2, 0-based)"


def test_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "nope.toml"), "--no-record"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path / 'nope.toml'}: cannot read scenario")


def test_run_with_fake_backend_prints_table_and_verdict(small_toml, tmp_path, monkeypatch):
    from scenario_fakes import FAKE_BACKEND

    monkeypatch.setattr(sim.run.replications, "DEFAULT_BACKEND", FAKE_BACKEND)
    out = tmp_path / "run"
    result = invoke(
        "run",
        str(small_toml),
        "--out",
        str(out),
        "-n",
        "2",
        "-j",
        "1",
        "--no-record",
        "--no-report",
        "--set",
        "slo.ttft_p99_s=100",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    best = summary["cheapest_meeting_slo"]
    assert best is not None
    assert (
        f"Cheapest fleet meeting the SLO (ttft_p99_s <= 100, e2e_p99_s <= 60, success >= 99%): {best}"
        in result.output
    )
    for name in ("api", "cloud-h100", "own-8xh100"):
        assert name in result.output


def test_subprocess_error_is_one_line_without_traceback(write_toml):
    path = write_toml("max_replicas = 4", "replicas_mx = 4")
    proc = subprocess.run(
        [sys.executable, "-c", "from sim.cli import main; main()", "run", str(path), "--no-record"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith("fleet[1].replicas_mx: unknown key (did you mean max_replicas?)")


def test_sim_run_end_to_end_in_a_subprocess(tmp_path):
    """The real simulator, prices from the shipped snapshot (cloud) or --set (API), recorded in a
    temporary warehouse and read back with `sim sql`."""
    db = tmp_path / "wh.duckdb"
    out = tmp_path / "run"
    sim_cmd = [sys.executable, "-c", "from sim.cli import main; main()", "--db", str(db)]
    run = subprocess.run(
        [
            *sim_cmd, "run", str(REPO / "scenarios" / "baseline.toml"), "--out", str(out), "-n", "2", "-j", "2",
            "--set", "workload.max_requests=400",
            "--set", "fleet.api-together.price_usd_per_mtok_input=0.88",
            "--set", "fleet.api-together.price_usd_per_mtok_output=0.88",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    best = summary["cheapest_meeting_slo"]
    verdict = [line for line in run.stdout.splitlines() if "meet" in line and "SLO (" in line]
    assert len(verdict) == 1
    assert verdict[0].endswith(f": {best}") if best else verdict[0].startswith("No fleet meets")
    # The report reads price history from the warehouse the run used (--db), not the default.
    resolved = json.loads((out / "scenario.resolved.json").read_text())
    assert resolved["warehouse"] == str(db.resolve())
    page = (out / "report.html").read_text()
    # A history that moved is a chart; one that never moved is a row of a table.
    assert "Price history omitted" not in page
    assert 'data-chart="price_history"' in page or "Prices that never moved" in page
    for name in (
        "scenario.resolved.json",
        "requests.parquet",
        "timeseries.parquet",
        "bands.parquet",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    cloud = next(f for f in summary["fleets"] if f["name"] == "cloud-8xh100")
    # the Lambda on-demand price came from the warehouse, with its provenance
    assert cloud["prices"]["source"] == "lambda" and cloud["prices"]["sku"] == "gpu_8x_h100_sxm5"
    sql = subprocess.run(
        [*sim_cmd, "sql", "select fleet, value from sim_summaries where metric = 'total_cost_usd' order by fleet",
         "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert sql.returncode == 0, sql.stderr
    rows = json.loads(sql.stdout)
    assert [r["fleet"] for r in rows] == ["api-together", "cloud-8xh100", "own-8xh100"]
    by_fleet = {f["name"]: f["total_cost_usd"]["mean"] for f in summary["fleets"]}
    for row in rows:
        assert row["value"] == pytest.approx(by_fleet[row["fleet"]])
