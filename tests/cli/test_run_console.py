"""What `sim run` prints about the path the engine took (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli

PEAK = Path(__file__).resolve().parents[2] / "scenarios" / "peak.toml"
PINNED = [
    "workload.max_requests=300",
    "fleet.api-together.price_usd_per_mtok_input=0.88",
    "fleet.api-together.price_usd_per_mtok_output=0.88",
    "fleet.cloud-8xh100.price_usd_per_hour=23.92",
    "fleet.cloud-8xh100.gpus_per_instance=8",
]


@pytest.mark.parametrize("path", ["exact", "streaming"])
def test_the_console_names_the_streaming_path(tmp_path, path):
    args = ["--db", str(tmp_path / "w.duckdb"), "run", str(PEAK), "--out", str(tmp_path / "r")]
    for item in [*PINNED, f'scenario.engine_path="{path}"']:
        args += ["--set", item]
    args += ["--no-record", "--no-report", "--no-robust", "-q", "--backend", "serial"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    said = "engine path: streaming (aggregated per window" in result.output
    assert said == (path == "streaming")
    assert '"engine_path": "' + path + '"' in (tmp_path / "r" / "summary.json").read_text()
