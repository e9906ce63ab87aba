"""`sim trace ...` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli

DATA = Path(__file__).parent / "data"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_stats_text_for_builtin_code_trace():
    result = run("trace", "stats", "builtin:azure2023_code")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "trace                builtin:azure2023_code (azure2023)"
    assert lines[1] == "requests             8,819"
    assert lines[3] == "mean rate            2.567 req/s"
    assert "inter-arrival CV     13.15 (Poisson = 1)" in lines
    # Token table: p50 prompt 1469, p50 output 13 (SOURCES.md).
    prompt_row = next(line for line in lines if line.startswith("prompt "))
    assert prompt_row.split()[2] == "1469"


def test_stats_json():
    result = run("trace", "stats", "builtin:azure2023_conv", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["requests"] == 19366 and data["format"] == "azure2023"
    assert data["output_tokens"]["p50"] == 129
    assert data["peak_rate_per_s"] >= data["mean_rate_per_s"]


def test_stats_burstgpt_model_and_dropped():
    result = run(
        "trace", "stats", str(DATA / "burstgpt_sample.csv"), "--model", "ChatGPT", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["requests"], data["dropped_failed"]) == (3, 1)


def test_stats_generic_columns():
    result = run(
        "trace", "stats", str(DATA / "generic_sample.csv"), "--json",
        "--column", "timestamp=ts_ms", "--column", "prompt_tokens=in",
        "--column", "output_tokens=out", "--column", "timestamp_unit=ms",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["span_s"] == 3.0


def test_broken_trace_exits_2_with_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n"
        "2023-11-16 18:17:04.0319600,abc,8\n"
    )
    result = run("trace", "stats", str(path))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {path}:3: ContextTokens: not an integer: 'abc'"
    assert "Traceback" not in result.output


def test_missing_file_exits_2():
    result = run("trace", "stats", "no/such/file.csv")
    assert result.exit_code == 2
    assert "trace file not found" in result.output


def test_bad_column_option_exits_2():
    result = run("trace", "stats", str(DATA / "generic_sample.csv"), "--column", "ts_ms")
    assert result.exit_code == 2 and "expected KEY=COLUMN" in result.output


def test_list_builtin():
    result = run("trace", "list")
    assert result.output.split() == ["builtin:azure2023_code", "builtin:azure2023_conv"]


@pytest.mark.parametrize("args", [("trace",), ("trace", "stats"), ("trace", "list")])
def test_every_trace_command_has_an_example(args):
    result = run(*args, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output


def test_stats_of_a_scenario_workload(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        "[workload]\n"
        'generator = "poisson"\nrate_per_s = 4.0\nduration_s = 1000.0\n'
        'prompt_tokens = { dist = "fixed", value = 100 }\n'
        'output_tokens = { dist = "fixed", value = 10 }\n'
    )
    first = json.loads(run("trace", "stats", str(path), "--json", "--seed", "3").output)
    again = json.loads(run("trace", "stats", str(path), "--json", "--seed", "3").output)
    assert first == again
    assert abs(first["requests"] - 4000) < 4 * 4000**0.5  # Poisson(4000): sd 63
    assert first["prompt_tokens"]["max"] == 100 and first["format"].startswith("poisson")


def test_scenario_with_bad_workload_exits_2(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[workload]\ngenerator = "poisson"\nrate_per_s = "lots"\n')
    result = run("trace", "stats", str(path))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {path}:3: workload.rate_per_s: expected a number, got str 'lots'"
    )
