"""`sim calibrate` end to end on a shipped benchmark-result file, and `--fit` recovering a known
profile on a constructed case (runs simulated with known constants, fitted from another start)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.errors import InputError
from sim.perf import build_profile
from sim.perf.engines import load_engine_profile
from sim.perf.replay import METRICS, BenchRun, EngineLimits, read_bench_result, simulate_run

DATA = Path(__file__).resolve().parents[1] / "data" / "serving"
RESULT = DATA / "synthetic_vllm_bench_result.json"
SETUP = ["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1", "--precision", "bf16"]


def test_reads_a_vllm_result_file():
    run = read_bench_result(RESULT)
    assert len(run.input_lens) == 64 and run.max_concurrency == 16
    assert math.isinf(run.request_rate)
    # Summary throughputs from the file; percentiles recomputed from per-request ttfts / itls.
    raw = json.loads(RESULT.read_text())
    assert run.measured["output_throughput"] == raw["output_throughput"]
    assert run.measured["median_ttft_ms"] == pytest.approx(np.median(raw["ttfts"]) * 1e3)


def test_calibrate_json_end_to_end():
    res = CliRunner().invoke(cli, ["calibrate", str(RESULT), *SETUP, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    (run,) = out["runs"]
    assert set(run) >= {"measured", "simulated", "error"}
    assert set(run["simulated"]) == set(METRICS)
    for metric, err in run["error"].items():
        assert err == pytest.approx(run["simulated"][metric] / run["measured"][metric] - 1)
    assert set(out["aggregate"]["median_abs_error"]) == set(run["error"])


def test_calibrate_table_and_help():
    res = CliRunner().invoke(cli, ["calibrate", str(RESULT), *SETUP])
    assert res.exit_code == 0 and "aggregate" in res.output and "median_tpot_ms" in res.output
    assert "Example:" in CliRunner().invoke(cli, ["calibrate", "--help"]).output


@pytest.mark.parametrize(
    ("content", "field"),
    [("{}", "input_lens"), ("[1, 2]", "not a JSON object"), ("{oops", "not a JSON")],
)
def test_bad_result_files_fail_with_exit_2(tmp_path, content, field):
    path = tmp_path / "r.json"
    path.write_text(content)
    res = CliRunner().invoke(cli, ["calibrate", str(path), *SETUP])
    assert res.exit_code == 2 and str(path) in res.output and field in res.output


def _constructed_runs(cal, tmp_path) -> list[Path]:
    """Benchmark files whose 'measurements' are replays with known constants `cal`."""
    profile = build_profile("llama-3.1-8b", "a100-80gb", calibration=cal)
    paths = []
    for k, (rate, cap, inp, out) in enumerate(
        [
            (math.inf, 1, 512, 128),
            (math.inf, 8, 256, 256),
            (4.0, None, 1024, 64),
            (math.inf, 32, 128, 512),
        ]
    ):
        n = 24
        run = BenchRun(f"c{k}", np.full(n, inp), np.full(n, out), rate, cap, seed=k)
        sim = simulate_run(run, profile, EngineLimits())
        doc = {
            "request_rate": "inf" if math.isinf(rate) else rate,
            "max_concurrency": cap,
            "input_lens": [inp] * n,
            "output_lens": [out] * n,
            **{key: sim[key] for key in METRICS},
        }
        path = tmp_path / f"run{k}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def test_fit_recovers_a_known_profile_and_improves_held_out_error(tmp_path):
    truth = replace(
        load_engine_profile("vllm-v1"),
        gemm_bw_eff=0.55,
        step_overhead_s=2.5e-3,
        per_seq_overhead_s=30e-6,
    )
    paths = [str(p) for p in _constructed_runs(truth, tmp_path)]
    setup = ["--model", "llama-3.1-8b", "--gpu", "a100-80gb", "--json"]
    before = json.loads(CliRunner().invoke(cli, ["calibrate", *paths, *setup]).output)
    out_toml = tmp_path / "fitted.toml"
    res = CliRunner().invoke(cli, ["calibrate", *paths, *setup, "--fit", str(out_toml)])
    assert res.exit_code == 0, res.output
    after = json.loads(res.output)
    held = after["fit"]["held_out_median_abs_error"]
    base = before["aggregate"]["median_abs_error"]
    assert held["output_throughput"] < 0.5 * base["output_throughput"]
    assert held["median_tpot_ms"] < 0.5 * base["median_tpot_ms"]
    fitted = load_engine_profile(str(out_toml))
    assert fitted.gemm_bw_eff == pytest.approx(truth.gemm_bw_eff, rel=0.15)
    # A scenario names the written file: it loads as an engine profile.
    assert (
        build_profile("llama-3.1-8b", "a100-80gb", engine_profile=str(out_toml)).engine == "fitted"
    )


def test_unknown_model_is_an_input_error():
    with pytest.raises(InputError):
        read_bench_result(DATA / "does-not-exist.json")
