"""Same seed, scenario and prices give identical results: across two separate processes with
different PYTHONHASHSEED, and with --workers 1 against --workers 2 (docs/scenarios.md promises it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM = [sys.executable, "-c", "from sim.cli import main; main()"]
# The shipped baseline (all three fleet kinds, prices from the shipped snapshot), cut to 400
# requests and 2 replications so each process takes about a second.
ARGS = [
    "run",
    str(ROOT / "scenarios" / "baseline.toml"),
    "--seed",
    "7",
    "-n",
    "2",
    "--set",
    "workload.max_requests=400",
    "--no-report",
    "-q",
]
# Differ by design between two runs: when, and where.
VOLATILE = {"run_id", "started_at"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("det")
    db = tmp / "w.duckdb"
    runs = []
    for name, workers, hashseed in (("a", "1", "1"), ("b", "2", "2")):
        env = {**os.environ, "INFERCOST_DB": str(db), "PYTHONHASHSEED": hashseed}
        done = subprocess.run(
            [*SIM, *ARGS, "--workers", workers, "--out", str(tmp / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        runs.append(tmp / name)
    return runs, db


def test_summary_identical(two_runs):
    (a, b), _ = two_runs
    summary_a = json.loads((a / "summary.json").read_text())
    assert summary_a == json.loads((b / "summary.json").read_text())
    # Not vacuous: three fleets with costs and two replication values each.
    assert [f["kind"] for f in summary_a["fleets"]] == ["api", "cloud", "self_hosted"]
    assert all(len(f["total_cost_usd"]["values"]) == 2 for f in summary_a["fleets"])


def test_resolved_config_identical_apart_from_run_id_and_time(two_runs):
    (a, b), _ = two_runs

    def stable(path):
        data = json.loads((path / "scenario.resolved.json").read_text())
        return {k: v for k, v in data.items() if k not in VOLATILE}

    assert stable(a) == stable(b)


@pytest.mark.parametrize("table", ["requests", "timeseries", "bands"])
def test_parquet_tables_equal(two_runs, table):
    (a, b), _ = two_runs
    frame_a = pl.read_parquet(a / f"{table}.parquet")
    assert frame_a.height > 0
    assert frame_a.equals(pl.read_parquet(b / f"{table}.parquet"))


def test_recorded_summaries_equal(two_runs):
    from warehouse.db import Warehouse

    _, db = two_runs
    rows = Warehouse(db, read_only=True).query(
        "SELECT run_id, fleet, metric, value FROM sim_summaries ORDER BY fleet, metric, run_id"
    )
    assert rows["run_id"].n_unique() == 2
    per_run = rows.partition_by("run_id", as_dict=False)
    assert per_run[0].drop("run_id").equals(per_run[1].drop("run_id"))
