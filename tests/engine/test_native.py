"""The compiled replica (Cython build of replica.py, sim/engine/native.py) against replica.py:
every request's times, status and attempts and every other figure bit for bit, over the engine's
features; and the rules that choose the build (stale builds and INFERCOST_NATIVE=0 run
replica.py)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import native, simulate_fleet
from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    EngineConfig,
    SelfHostedFleetConfig,
)
from sim.perf import build_profile

ROOT = Path(__file__).resolve().parents[2]
compiled = pytest.mark.skipif(
    native.compiled_replica is None, reason=f"no compiled replica: {native.why_not_compiled}"
)

ENG = EngineConfig(max_batch_seqs=64, max_batched_tokens=2048)
API = ApiFleetConfig(name="api", price_usd_per_mtok_input=0.6, price_usd_per_mtok_output=0.8)
OWN = SelfHostedFleetConfig(name="own", servers=1, tp=2, gpu_price_usd=2e4, engine=ENG)
CLOUD = CloudFleetConfig(
    name="cloud",
    price_usd_per_hour=10.0,
    gpus_per_instance=8,
    max_replicas=6,
    target=16,
    upscale_delay_s=20,
    downscale_delay_s=60,
    engine=ENG,
)
SETUPS = {
    "own": OWN,
    "own_nochunk": replace(OWN, engine=replace(ENG, chunked_prefill=False)),
    "own_jsq_maxq": replace(OWN, engine=replace(ENG, router="jsq", max_queue=6)),
    "own_round_robin": replace(OWN, engine=replace(ENG, router="round_robin")),
    "cloud": CLOUD,
    "cloud_spot": replace(
        CLOUD,
        term="spot",
        spot_preemptions_per_hour=4.0,
        fallback_on_demand=True,
        fallback_price_usd_per_hour=20.0,
    ),
    "cloud_rate": replace(CLOUD, policy="rate", target=3, min_replicas=0),
    "hybrid": replace(OWN, tp=8, overflow=API, overflow_queue_threshold=8),
}
REAL = {  # real step-time models (roofline, all-reduces, MoE)
    "llama-3.1-8b": ("h100-sxm", 1),
    "llama-3.1-70b": ("h100-sxm", 4),
    "mixtral-8x7b": ("a100-80gb", 2),
}


def _both(cfg, w, factory, seed: int = 5, horizon: float | None = None):
    out = []
    for build in ("python", "compiled"):
        with native.use(build):
            r = simulate_fleet(
                cfg, w, profile_factory=factory, rng=np.random.default_rng(seed), horizon_s=horizon
            )
        out.append(r)
    return out


def _assert_identical(py, c) -> None:
    for name in ("start_s", "first_token_s", "finish_s", "status", "attempts", "cost_usd"):
        np.testing.assert_array_equal(getattr(c, name), getattr(py, name), err_msg=name)
    assert c.timeseries.equals(py.timeseries)
    assert c.cost_breakdown_usd.keys() == py.cost_breakdown_usd.keys()
    for key, value in py.cost_breakdown_usd.items():
        np.testing.assert_array_equal(c.cost_breakdown_usd[key], value, err_msg=key)
    assert json.dumps(c.meta, sort_keys=True, default=str) == json.dumps(
        py.meta, sort_keys=True, default=str
    )


@compiled
@pytest.mark.parametrize("name", sorted(SETUPS))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    rate=st.sampled_from([2.0, 8.0, 30.0]),
    kv=st.sampled_from([6_000, 40_000, 400_000]),
    horizon=st.sampled_from([None, 120.0]),
)
def test_the_compiled_replica_gives_every_result_of_replica_py(name, seed, rate, kv, horizon):
    w = poisson_workload(np.random.default_rng(seed), 1200, rate)
    factory = factory_for(FakeProfile(kv_capacity_tokens=kv))
    py, c = _both(SETUPS[name], w, factory, seed=seed, horizon=horizon)
    assert (py.status == 0).sum() > 0  # not vacuous: requests were served
    _assert_identical(py, c)


@compiled
@pytest.mark.parametrize("model", sorted(REAL))
def test_identical_with_real_step_time_models(model):
    gpu, tp = REAL[model]

    def factory(gpu_, tp_, precision, mem_util, engine_profile=None):
        return build_profile(model, gpu_, tp=tp_, precision=precision or "bf16", mem_util=mem_util)

    w = poisson_workload(np.random.default_rng(1), 3000, 20.0)
    fleets = [replace(OWN, gpu=gpu, tp=tp), replace(CLOUD, gpu=gpu, tp=tp)]
    if tp == 1:  # prefill and decode pools, KV over a link (sim/engine/disagg.py)
        fleets.append(replace(OWN, gpu=gpu, servers=2, tp=1, prefill={}, decode={}))
    for cfg in fleets:
        py, c = _both(cfg, w, factory)
        assert (py.status == 0).mean() > 0.5
        _assert_identical(py, c)


@compiled
def test_identical_with_per_replica_prefix_caches():
    from tests.engine.test_prefix_engine import _with_ids

    rng = np.random.default_rng(5)
    n = 1500
    times = np.sort(rng.uniform(0.0, 300.0, n))
    convo = rng.integers(0, 12, n)
    rows = [
        list(range(100 * c, 100 * c + 40)) + [10**6 + 10 * i + k for k in range(6)]
        for i, c in enumerate(convo.tolist())
    ]
    w = _with_ids(times, 46 * 16, 30, rows)
    factory = factory_for(FakeProfile(kv_capacity_tokens=40_000))
    for router in ("least_outstanding", "prefix_affinity"):
        eng = replace(ENG, prefix_cache=True, block_tokens=16, router=router)
        py, c = _both(replace(OWN, engine=eng), w, factory)
        assert py.meta["prefix_cache"]["hit_tokens"] > 0
        _assert_identical(py, c)


@compiled
@pytest.mark.parametrize("engine_path", ["exact", "streaming"])
def test_a_whole_run_is_identical_with_either_build(tmp_path, engine_path):
    """`sim run` in two processes, one told to run replica.py (INFERCOST_NATIVE=0): the same
    summary.json, on both engine paths."""
    summaries = []
    for name, flag in (("py", "0"), ("c", "1")):
        env = {**os.environ, "INFERCOST_DB": str(tmp_path / "w.duckdb"), "INFERCOST_NATIVE": flag}
        done = subprocess.run(
            [sys.executable, "-c", "from sim.cli import main; main()", "run"]
            + [str(ROOT / "scenarios" / "peak.toml"), "-n", "2", "--no-report", "-q"]
            + [
                "--set",
                "workload.max_requests=2500",
                "--set",
                f'scenario.engine_path="{engine_path}"',
            ]
            + ["--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        summaries.append({k: v for k, v in summary.items() if k not in ("run_id", "started_at")})
    assert summaries[0] == summaries[1]
    assert summaries[0]["engine_path"] == engine_path


# -- which build runs ------------------------------------------------------------------------------
def test_setup_stamps_the_build_with_the_hash_native_checks():
    setup = runpy.run_path(str(ROOT / "setup.py"), run_name="not_main")
    assert setup["NATIVE"] == native.NATIVE
    for name in native.NATIVE:
        assert setup["source_sha"](name) == native.source_sha(name)


def test_the_compiled_modules_are_optional_at_install():
    """Without a C compiler `pip install` must still succeed (the engine then runs the Python
    source): every extension setup.py builds is optional. (cythonize returns new Extension
    objects and dropped the flag once.)"""
    pytest.importorskip("Cython", reason="Cython (the test extra) checks setup.py's build")
    setup = runpy.run_path(str(ROOT / "setup.py"), run_name="not_main")
    exts = setup["native_extensions"]()
    assert sorted(e.name for e in exts) == [
        f"sim.engine._{n}_native" for n in sorted(native.NATIVE)
    ]
    assert all(e.optional for e in exts)
    assert all("-ffp-contract=off" in e.extra_compile_args for e in exts)


@compiled
@pytest.mark.parametrize("name", sorted(native.NATIVE))
def test_a_build_from_another_source_is_not_used(monkeypatch, name):
    monkeypatch.setattr(native, "source_sha", lambda _name: "0" * 64)
    with pytest.warns(RuntimeWarning, match=f"built from another {name}.py"):
        module, why = native._load(name)
    assert module is None and "rebuild" in why
    monkeypatch.undo()
    assert native._load(name)[0] is getattr(native, f"compiled_{name}")


def test_infercost_native_0_runs_the_python_source(monkeypatch):
    monkeypatch.setenv("INFERCOST_NATIVE", "0")
    assert native._load("replica") == (None, "INFERCOST_NATIVE=0")
    done = subprocess.run(
        [sys.executable, "-c", "from sim.engine import native; print(native.describe())"],
        capture_output=True,
        text=True,
        env={**os.environ, "INFERCOST_NATIVE": "0"},
        check=True,
    )
    assert done.stdout.strip() == "Python source (INFERCOST_NATIVE=0)"


def test_fleets_are_built_with_the_chosen_build(monkeypatch):
    from sim.engine.fleet import GpuFleet

    fleets = []
    real_init = GpuFleet.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        fleets.append(self)

    monkeypatch.setattr(GpuFleet, "__init__", spy)
    w = poisson_workload(np.random.default_rng(0), 50, 5.0)
    builds = {"python": (native.python_replica, native.python_steptime)}
    if native.compiled_replica is not None:
        builds["compiled"] = (native.compiled_replica, native.compiled_steptime)
    factory = factory_for(build_profile("llama-3.1-8b", "h100-sxm", tp=1))
    for build, (replica, steptime) in builds.items():
        with native.use(build):
            simulate_fleet(OWN, w, profile_factory=factory, rng=np.random.default_rng(0))
        assert fleets[-1].replicas
        assert all(type(r) is replica.Replica for r in fleets[-1].replicas)
        st = fleets[-1].replicas[0].st
        assert type(st) is steptime.StepTimes  # the mirror, not the generic method
