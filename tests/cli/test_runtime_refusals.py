"""A fleet the workload cannot feed is refused by the engine only once the trace is read (its
format is known then): still one line naming the file and fleet, exit 2, no run directory."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sim.cli import cli

TRACE = Path(__file__).resolve().parents[1] / "traffic" / "data" / "azure2024_sample.csv"

SCENARIO = f"""
[scenario]
name = "noid"
[workload]
trace = "{TRACE.as_posix()}"
[model]
name = "llama-3.1-8b"
[slo]
ttft_p99_s = 2.0
[[fleet]]
name = "own"
kind = "self_hosted"
gpu = "h100-sxm"
servers = 1
gpus_per_server = 1
tp = 1
gpu_price_usd = 25000
engine = {{ prefix_cache = true }}
"""


def _refusal(tmp_path, text: str) -> tuple[str, Path]:
    """Run the scenario `text`; the one line it prints (exit 2, no run directory) and its file."""
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "w.duckdb"), "run", str(path), "--out", str(out), "-q"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert not out.exists()
    return lines[0], path


def test_prefix_cache_without_prefix_identity_is_one_line(tmp_path):
    line, path = _refusal(tmp_path, SCENARIO)
    assert str(path) in line and "fleet.own" in line and "prefix identity" in line


def test_what_cannot_stream_is_one_line(tmp_path):
    disagg = (
        SCENARIO.replace('name = "noid"', 'name = "noid"\nengine_path = "streaming"')
        .replace("servers = 1", "servers = 2")
        .replace("engine = { prefix_cache = true }", "[fleet.prefill]\n[fleet.decode]")
    )
    line, path = _refusal(tmp_path, disagg)
    assert str(path) in line and "fleet.own" in line
    assert "prefill: disaggregated fleet 'own' cannot stream yet" in line
