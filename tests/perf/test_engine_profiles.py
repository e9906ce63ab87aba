"""Engine profiles: shipped TOMLs load and say what they were fitted on; bad files are refused
with the file and key named; a scenario's engine.profile reaches the step-time model."""

from __future__ import annotations

import pytest

from sim.errors import InputError
from sim.perf import build_profile
from sim.perf.engines import (
    list_engine_profiles,
    load_engine_profile,
    profile_document,
    profile_error_band,
)

SHIPPED = ("vllm-0.5", "vllm-0.6", "vllm-v1", "sglang", "trtllm")


def test_the_five_engine_profiles_ship():
    assert set(SHIPPED) <= set(list_engine_profiles())


@pytest.mark.parametrize("name", SHIPPED)
def test_each_profile_loads_and_documents_its_fit(name):
    cal = load_engine_profile(name)
    assert cal.name == name
    meta = profile_document(name)["profile"]
    assert meta["engine"] and meta["version"]
    assert "fitted_on" in meta and "status" in meta
    if meta["fitted_on"]:
        assert meta["held_out"], "a fitted profile must name its held-out runs"
    lo, hi = profile_error_band(name)
    assert 0 < lo <= 1.0 <= hi


def test_engines_differ_where_they_should():
    old, new = load_engine_profile("vllm-0.5"), load_engine_profile("vllm-v1")
    assert old.cuda_graph_decode_only and not new.cuda_graph_decode_only
    assert old.step_overhead_s > new.step_overhead_s
    assert load_engine_profile("trtllm").kv_admission == "no_evict"


def test_a_profile_by_path(tmp_path):
    text = profile_document("vllm-v1")
    path = tmp_path / "mine.toml"
    path.write_text('[profile]\nname = "mine"\n\n[constants]\nstep_overhead_s = 0.002\n')
    cal = load_engine_profile(str(path))
    assert cal.name == "mine" and cal.step_overhead_s == 0.002
    slow = build_profile("llama-3.1-8b", "h100-sxm", engine_profile=str(path))
    fast = build_profile("llama-3.1-8b", "h100-sxm", calibration=cal.__class__(step_overhead_s=0))
    assert slow.decode_step_s(1, 100) > fast.decode_step_s(1, 100)
    assert text["constants"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[constants]\nwarp_speed = 2.0\n", "constants.warp_speed"),
        ('[constants]\ncuda_graph_decode_only = "yes"\n', "constants.cuda_graph_decode_only"),
        ('[constants]\nkv_admission = "sometimes"\n', "constants.kv_admission"),
        ("[profile]\nname = 'x'\n", "constants"),
    ],
)
def test_bad_profile_files_name_file_and_key(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        load_engine_profile(str(path))
    assert str(path) in str(info.value) and field in str(info.value)


def test_unknown_profile_name_lists_the_shipped_ones():
    with pytest.raises(InputError, match="vllm-v1"):
        build_profile("llama-3.1-8b", "h100-sxm", engine_profile="vllm-9000")


def test_scenario_engine_profile_reaches_the_step_model():
    from sim.engine.config import EngineConfig, SelfHostedFleetConfig
    from sim.engine.simulate import _profile

    calls = []

    def factory(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
        calls.append(engine_profile)
        return build_profile("llama-3.1-8b", gpu, tp=tp, engine_profile=engine_profile)

    cfg = SelfHostedFleetConfig(name="own", tp=1, engine=EngineConfig(profile="sglang"))
    p = _profile(factory, cfg.gpu, cfg.tp, None, 0.9, cfg.engine.profile)
    assert calls == ["sglang"] and p.engine == "sglang"
