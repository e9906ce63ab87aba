"""Bad input, as a first-time user types it: every case must end in ONE stderr line
`error: FILE: FIELD: reason` naming the file (or option) and the field, exit code 2, no traceback,
and nothing already stored (a run directory, the warehouse's runs) changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli

# Every price is explicit, so no case needs the warehouse's prices; the 8B model fits one H100.
BASE = textwrap.dedent(
    """
    [scenario]
    name = "qa"
    seed = 1
    replications = 1

    [workload]
    generator = "poisson"
    rate_per_s = 1.0
    duration_s = 30.0
    prompt_tokens = { dist = "fixed", value = 100 }
    output_tokens = { dist = "fixed", value = 20 }

    [model]
    name = "llama-3.1-8b"

    [slo]
    ttft_p99_s = 2.0

    [[fleet]]
    name = "api"
    kind = "api"
    price_usd_per_mtok_input = 0.1
    price_usd_per_mtok_output = 0.2
    ttft_s = { dist = "lognormal", median = 0.45, sigma = 0.5 }
    output_tokens_per_s = 80.0

    [[fleet]]
    name = "own"
    kind = "self_hosted"
    gpu = "h100-sxm"
    servers = 1
    gpus_per_server = 1
    tp = 1
    gpu_price_usd = 25000
    """
)
GENERATOR = textwrap.dedent(
    """\
    generator = "poisson"
    rate_per_s = 1.0
    duration_s = 30.0
    prompt_tokens = { dist = "fixed", value = 100 }
    output_tokens = { dist = "fixed", value = 20 }
    """
)
HEAD, FLEETS = BASE.split("[[fleet]]", 1)

# (id, text of the bad scenario, substring naming the field; "TRACE" cases name the trace file)
SCENARIOS = [
    ("malformed_toml", BASE.replace("seed = 1", "seed = = 1"), "invalid TOML"),
    ("unknown_top_table", BASE + "\n[extra]\na = 1\n", "extra: unknown key"),
    ("unknown_scenario_key", BASE.replace("seed = 1", "seed = 1\nsed = 2"), "scenario.sed"),
    (
        "unknown_workload_key",
        BASE.replace("rate_per_s = 1.0", "rate_per_s = 1.0\nrate_pers = 2"),
        "workload.rate_pers",
    ),
    (
        "unknown_model_key",
        BASE.replace('name = "llama-3.1-8b"', 'name = "llama-3.1-8b"\nprecison = "bf16"'),
        "model.precison",
    ),
    ("unknown_slo_key", BASE.replace("ttft_p99_s = 2.0", "ttft_p98_s = 1.0"), "slo.ttft_p98_s"),
    (
        "unknown_fleet_key",
        BASE.replace("gpu_price_usd = 25000", "gpu_price_usd = 25000\nreplicas_mx = 3"),
        "fleet[1].replicas_mx",
    ),
    (
        "unknown_engine_key",
        BASE.replace("gpu_price_usd = 25000", "gpu_price_usd = 25000\nengine = { max_batch = 3 }"),
        "fleet[1].engine.max_batch",
    ),
    ("unknown_dist_key", BASE.replace("sigma = 0.5 }", "sigma = 0.5, mean = 2 }"), "ttft_s.mean"),
    (
        "unknown_workload_dist_key",
        BASE.replace("value = 100 }", "value = 100, foo = 1 }"),
        "workload.prompt_tokens.foo",
    ),
    ("string_for_rate", BASE.replace("rate_per_s = 1.0", 'rate_per_s = "fast"'), "rate_per_s"),
    (
        "string_for_price",
        BASE.replace("gpu_price_usd = 25000", 'gpu_price_usd = "25000"'),
        "fleet[1].gpu_price_usd",
    ),
    (
        "list_for_dist_table",
        BASE.replace('ttft_s = { dist = "lognormal", median = 0.45, sigma = 0.5 }', "ttft_s = [1]"),
        "fleet[0].ttft_s",
    ),
    ("list_for_slo_table", "slo = [1]\n" + BASE.replace("[slo]\nttft_p99_s = 2.0", ""), "slo"),
    ("list_for_engine", BASE.replace("tp = 1", "tp = 1\nengine = [1]"), "fleet[1].engine"),
    ("negative_rate", BASE.replace("rate_per_s = 1.0", "rate_per_s = -1.0"), "rate_per_s"),
    ("zero_rate", BASE.replace("rate_per_s = 1.0", "rate_per_s = 0"), "rate_per_s"),
    ("nan_rate", BASE.replace("rate_per_s = 1.0", "rate_per_s = nan"), "rate_per_s"),
    (
        "inf_price",
        BASE.replace("gpu_price_usd = 25000", "gpu_price_usd = inf"),
        "fleet[1].gpu_price_usd",
    ),
    ("nan_slo", BASE.replace("ttft_p99_s = 2.0", "ttft_p99_s = nan"), "slo.ttft_p99_s"),
    ("nan_dist_param", BASE.replace("median = 0.45", "median = nan"), "ttft_s.median"),
    ("zero_servers", BASE.replace("servers = 1", "servers = 0"), "fleet[1].servers"),
    ("tp_3", BASE.replace("tp = 1", "tp = 3"), "fleet[1].tp"),
    (
        "model_does_not_fit",
        BASE.replace('name = "llama-3.1-8b"', 'name = "llama-3.1-405b"'),
        "fleet[1].tp",
    ),
    ("unknown_model", BASE.replace('name = "llama-3.1-8b"', 'name = "llama-9"'), "model.name"),
    ("unknown_gpu", BASE.replace('gpu = "h100-sxm"', 'gpu = "h900"'), "fleet[1].gpu"),
    (
        "unknown_fleet_kind",
        BASE.replace('kind = "self_hosted"', 'kind = "selfhosted"'),
        "fleet[1].kind",
    ),
    ("empty_fleet_list", "fleet = []\n" + HEAD, "fleet"),
    ("no_fleet", HEAD, "fleet"),
    ("trace_missing", BASE.replace(GENERATOR, 'trace = "nope.csv"\n'), "workload.trace"),
    ("trace_is_directory", BASE.replace(GENERATOR, 'trace = "."\n'), "is a directory"),
    ("trace_broken_line", BASE.replace(GENERATOR, 'trace = "broken.csv"\n'), "TRACE"),
    ("trace_header_only", BASE.replace(GENERATOR, 'trace = "header.csv"\n'), "TRACE"),
]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A good scenario, trace files good and bad, an empty dir and an existing run directory."""
    monkeypatch.setenv("INFERCOST_NO_SNAPSHOT", "1")  # every price here is explicit
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "broken.csv").write_text("timestamp,prompt_tokens,output_tokens\n0,10,5\n1,abc,5\n")
    (tmp_path / "header.csv").write_text("timestamp,prompt_tokens,output_tokens\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty_dir").mkdir()
    run_dir = tmp_path / "existing_run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps({"keep": "me"}))
    return tmp_path


def invoke(tmp: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(tmp / "w.duckdb"), *args])


def assert_one_line_error(result, *names: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.mark.parametrize(("text", "field"), [pytest.param(t, f, id=i) for i, t, f in SCENARIOS])
def test_bad_scenario_is_one_line_naming_file_and_field(files, text, field):
    scenario = files / "bad.toml"
    scenario.write_text(text)
    existing = files / "existing_run"
    result = invoke(files, "run", str(scenario), "--out", str(existing), "--no-report", "-q")
    if field == "TRACE":  # an error inside a trace names the trace file, not the scenario
        line = assert_one_line_error(result)
        assert str(files / "broken.csv") in line or str(files / "header.csv") in line, line
    else:
        assert_one_line_error(result, str(scenario), field)
    # Validation happens before anything is written: the run directory there is untouched.
    assert sorted(p.name for p in existing.iterdir()) == ["summary.json"]
    assert json.loads((existing / "summary.json").read_text()) == {"keep": "me"}


# (id, command line with {tmp} for the fixture folder, substrings the one line must contain)
COMMANDS = [
    ("run_missing_file", ["run", "{tmp}/nope.toml"], ["{tmp}/nope.toml", "cannot read"]),
    ("run_directory", ["run", "{tmp}/empty_dir"], ["{tmp}/empty_dir", "not a regular file"]),
    ("set_bad_index", ["run", "{tmp}/base.toml", "--set", "fleet.9.tp=2"], ["--set", "fleet.9"]),
    ("set_no_value", ["run", "{tmp}/base.toml", "--set", "fleet.0.tp"], ["--set", "KEY=VALUE"]),
    (
        "set_bad_value",
        ["run", "{tmp}/base.toml", "--set", "workload.rate_per_s=abc"],
        ["{tmp}/base.toml: workload.rate_per_s"],
    ),
    # The file's line holds the value --set replaced, so no line number may be cited.
    (
        "set_tp_3_cites_no_file_line",
        ["run", "{tmp}/base.toml", "--set", "fleet.own.tp=3"],
        ["{tmp}/base.toml: fleet[1].tp: tensor parallelism"],
    ),
    ("run_zero_replications", ["run", "{tmp}/base.toml", "-n", "0"], ["--replications"]),
    ("run_negative_seed", ["run", "{tmp}/base.toml", "--seed", "-1"], ["--seed", ">= 0"]),
    (
        "breakeven_negative_seed",
        ["breakeven", "{tmp}/base.toml", "--scale", "1,2", "--seed", "-1"],
        ["--seed"],
    ),
    # Unusable output paths: refused before simulating, one line, no traceback.
    (
        "run_out_under_a_file",
        ["run", "{tmp}/base.toml", "--out", "{tmp}/base.toml/run", "--no-record"],
        ["{tmp}/base.toml/run", "Not a directory"],
    ),
    (
        "db_under_a_file",
        ["--db", "{tmp}/base.toml/w.duckdb", "sql", "SELECT 1"],
        ["{tmp}/base.toml"],
    ),
    ("run_workers_not_int", ["run", "{tmp}/base.toml", "-j", "x"], ["'--workers'"]),
    ("run_no_argument", ["run"], ["SCENARIO.toml"]),
    ("db_is_directory", ["--db", "{tmp}/empty_dir", "sql", "SELECT 1"], ["'--db'"]),
    ("report_not_a_run", ["report", "{tmp}/empty_dir"], ["{tmp}/empty_dir", "nothing to report"]),
    ("report_missing_dir", ["report", "{tmp}/nope"], ["RUN_DIR", "{tmp}/nope"]),
    (
        "report_summary_without_fleets",
        ["report", "{tmp}/existing_run"],
        ["{tmp}/existing_run/summary.json: fleets"],
    ),
    (
        "prices_history_unknown_provider",
        ["prices", "history", "gpt-4o", "--provider", "nobody"],
        ["'gpt-4o'", "'nobody'"],
    ),
    ("compare_not_runs", ["compare", "{tmp}/empty_dir", "{tmp}/existing_run"], ["{tmp}/empty_dir"]),
    ("compare_missing", ["compare", "{tmp}/existing_run", "{tmp}/nope"], ["RUN_B"]),
    ("breakeven_scale", ["breakeven", "{tmp}/base.toml", "--scale", "garbage"], ["--scale"]),
    ("sweep_grid", ["sweep", "{tmp}/base.toml", "--grid", "bad"], ["--grid", "bad"]),
    ("replay_as_of", ["replay", "{tmp}/base.toml", "--as-of", "notadate"], ["--as-of"]),
    ("sql_syntax", ["sql", "SELEC 1"], ["SQL", "syntax error"]),
    ("sql_write", ["sql", "DELETE FROM sim_runs"], ["SQL", "DELETE statements are refused"]),
    ("prices_as_of", ["prices", "list", "--as-of", "garbage"], ["as_of", "'garbage'"]),
    ("prices_history_unknown", ["prices", "history", "NOSUCHSKU"], ["'NOSUCHSKU'"]),
    (
        "perf_batch_0",
        ["perf", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--batch", "0"],
        ["--batch"],
    ),
    ("perf_tp_3", ["perf", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "3"], ["tp"]),
    (
        "perf_tp_not_int",
        ["perf", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "x"],
        ["'--tp'"],
    ),
    ("trace_binary", ["trace", "stats", "{tmp}/binary.csv"], ["{tmp}/binary.csv", "not UTF-8"]),
    ("trace_empty", ["trace", "stats", "{tmp}/empty.csv"], ["{tmp}/empty.csv", "empty"]),
    ("trace_header_only", ["trace", "stats", "{tmp}/header.csv"], ["{tmp}/header.csv", "no data"]),
    (
        "trace_broken_line",
        ["trace", "stats", "{tmp}/broken.csv"],
        ["{tmp}/broken.csv:3", "prompt_tokens"],
    ),
    ("trace_directory", ["trace", "stats", "{tmp}/empty_dir"], ["is a directory"]),
]


@pytest.mark.parametrize(("argv", "names"), [pytest.param(a, n, id=i) for i, a, n in COMMANDS])
def test_bad_command_input_is_one_line(files, argv, names):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    names = [n.replace("{tmp}", str(files)) for n in names]
    assert_one_line_error(invoke(files, *argv), *names)


def test_bare_group_still_shows_its_help(files):
    # `sim prices` alone is not an error worth an "error:" line: click shows the group's help.
    result = invoke(files, "prices")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: ") and "prices [OPTIONS] COMMAND" in result.stderr


def test_bad_input_keeps_recorded_runs(files):
    """A good run is recorded; a string of bad commands afterwards leaves the warehouse as it was."""
    good = invoke(files, "run", str(files / "base.toml"), "--out", str(files / "r1"), "-q")
    assert good.exit_code == 0, good.output
    before = invoke(files, "sql", "SELECT run_id, count(*) AS n FROM sim_summaries GROUP BY 1")
    for argv in (
        ["sql", "DELETE FROM sim_runs"],
        ["sql", "DROP TABLE sim_summaries"],
        ["sql", "SELECT 1; DELETE FROM sim_runs"],
        ["run", str(files / "base.toml"), "--set", "fleet.own.tp=3"],
    ):
        assert invoke(files, *argv).exit_code == 2
    after = invoke(files, "sql", "SELECT run_id, count(*) AS n FROM sim_summaries GROUP BY 1")
    assert after.output == before.output and "qa-" in after.output


# Real processes: what a user sees in a terminal, tracebacks included if any slip through.
SIM = [sys.executable, "-c", "from sim.cli import main; main()"]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        pytest.param(["run", "{tmp}/bad.toml"], ["{tmp}/bad.toml", "invalid TOML"], id="toml"),
        pytest.param(["trace", "stats", "{tmp}/broken.csv"], ["broken.csv:3"], id="trace"),
        pytest.param(["sql", "INSERT INTO sim_runs VALUES (1)"], ["INSERT"], id="sql_write"),
    ],
)
def test_subprocess_prints_no_traceback(files, argv, names):
    (files / "bad.toml").write_text("[scenario\nname = 1\n")
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    env = {**os.environ, "INFERCOST_DB": str(files / "w.duckdb")}
    done = subprocess.run(
        [*SIM, *argv], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for name in names:
        assert name.replace("{tmp}", str(files)) in lines[0]
