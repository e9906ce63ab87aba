"""`slo_robust`: a GPU fleet's verdict re-judged with step times at the edges of the serving
model's held-out error, with the same seeds."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from sim.run import run_replications
from sim.run.robust import ScaledProfile, error_band, with_robustness
from sim.scenario import load_scenario
from sim.summary import summarize

SCENARIO = textwrap.dedent(
    """
    [scenario]
    name = "robust"
    seed = 3
    [workload]
    generator = "poisson"
    rate_per_s = 2.0
    duration_s = 120
    prompt_tokens = {{ dist = "const", value = 500 }}
    output_tokens = {{ dist = "const", value = 100 }}
    [model]
    name = "llama-3.1-8b"
    [slo]
    tpot_p99_s = {target}
    [[fleet]]
    name = "api"
    kind = "api"
    price_usd_per_mtok_input = 1.0
    price_usd_per_mtok_output = 1.0
    output_tokens_per_s = 1000.0
    [[fleet]]
    name = "own"
    kind = "self_hosted"
    gpu = "h100-sxm"
    servers = 1
    gpus_per_server = 1
    tp = 1
    gpu_price_usd = 25000
    engine = {{ profile = "sglang" }}
    """
)


def _scenario(tmp_path, target: float):
    path = tmp_path / "robust.toml"
    path.write_text(SCENARIO.format(target=target))
    return load_scenario(path)


def test_scaled_profile_multiplies_step_times_only():
    from sim.perf import build_profile, load_model

    base = build_profile(load_model("llama-3.1-8b"), "h100-sxm", tp=1)
    scaled = ScaledProfile(base, 1.25)
    assert scaled.step_time_s(0, 0.0, 32, 32 * 1000) == pytest.approx(
        1.25 * base.step_time_s(0, 0.0, 32, 32 * 1000)
    )
    assert scaled.kv_capacity_tokens == base.kv_capacity_tokens and scaled.fits == base.fits
    with pytest.raises(AttributeError):
        scaled._fixed_gpu_s  # noqa: B018 - private terms are not passed through


def test_verdicts_at_the_edges_of_the_error_band(tmp_path):
    probe = _scenario(tmp_path, 10.0)
    lo, hi = error_band(probe)
    assert lo <= 1.0 < hi  # sglang's held-out band reaches 1.276
    reps = run_replications(probe, n=1, seed=3)
    tpot = summarize(probe, reps).fleet("own").latency("tpot", "p99")

    def judged(target: float) -> str:
        sc = _scenario(tmp_path, target)
        summary = summarize(sc, run_replications(sc, n=1, seed=3), seed=3)
        robust = with_robustness(summary, sc, n=1, seed=3)
        assert robust.fleet("api").slo_robust == ("met" if robust.fleet("api").meets_slo else "missed")  # fmt: skip
        return robust.fleet("own").slo_robust

    # Met with margin at every edge, missed at every edge, and met only without the error.
    assert judged(tpot * hi * 1.5) == "met"
    assert judged(tpot * 0.5) == "missed"
    assert judged(tpot * (1 + (hi - 1) / 2)) == "uncertain"


def test_profile_without_held_out_error_is_unknown(tmp_path):
    sc = _scenario(tmp_path, 10.0)
    fleets = [
        f
        if f.kind == "api"
        else dataclasses.replace(
            f, engine=dataclasses.replace(f.engine, profile="vllm-0.5")
        )  # fmt: skip
        for f in sc.fleets
    ]
    sc = dataclasses.replace(sc, fleets=tuple(fleets))
    summary = summarize(sc, run_replications(sc, n=1, seed=3), seed=3)
    robust = with_robustness(summary, sc, n=1, seed=3)
    assert robust.fleet("own").slo_robust == "unknown"
    assert robust.to_json()["fleets"][1]["slo_robust"] == "unknown"
