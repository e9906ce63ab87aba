"""`--backend ray` gives the same results as the local process pool (issue 13): `sim run` on the
shipped peak scenario and `sim sweep`, against a local Ray instance this module starts and stops.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from sim.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PEAK = str(ROOT / "scenarios" / "peak.toml")
# The shipped peak scenario (three fleet kinds, prices from the snapshot), cut to 3,000 requests
# and 2 replications: 6 tasks.
RUN = ["-n", "2", "--seed", "5", "--set", "workload.max_requests=3000", "--no-report", "-q"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="ray not installed (pip install 'infercost[ray]')",
    ),
]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _invoke(db: Path, *args: str):
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_sim_run_on_ray_writes_the_same_summary(local_ray, tmp_path):
    db = tmp_path / "w.duckdb"
    _invoke(
        db, "run", PEAK, *RUN, "--no-record", "--out", str(tmp_path / "ray"), "--backend", "ray"
    )
    _invoke(db, "run", PEAK, *RUN, "--no-record", "--out", str(tmp_path / "pool"), "-j", "2")
    on_ray = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert on_ray == json.loads((tmp_path / "pool" / "summary.json").read_text())
    assert len(on_ray["fleets"]) == 3 and on_ray["replications"] == 2  # not vacuous
    for table in ("requests", "timeseries"):
        ray_df = pl.read_parquet(tmp_path / "ray" / f"{table}.parquet")
        assert ray_df.height > 0
        assert ray_df.equals(pl.read_parquet(tmp_path / "pool" / f"{table}.parquet"))


def test_sim_sweep_on_ray_gives_the_process_pool_table(local_ray, tmp_path):
    db = tmp_path / "w.duckdb"
    grid = ["--grid", "workload.rate_scale=0.5,1", "-n", "1", "--set", "workload.max_requests=1500"]
    for backend in ("ray", "process"):
        out = tmp_path / backend
        _invoke(db, "sweep", PEAK, *grid, "--backend", backend, "--out", str(out))
    ray_df = pl.read_parquet(tmp_path / "ray" / "sweep.parquet")
    assert ray_df.height == 2 * 3  # two points x three fleets
    assert ray_df.equals(pl.read_parquet(tmp_path / "process" / "sweep.parquet"))


def test_address_without_ray_backend_is_an_input_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", PEAK, "--address", "auto", "--no-report"])
    assert result.exit_code == 2
    assert "--address" in result.output and "ray" in result.output
