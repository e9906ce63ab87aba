"""The replica's step times (sim/engine/steptime.py) must give exactly the perf model's floats,
in the Python source and in its compiled build alike."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile

from sim.engine import native, steptime
from sim.perf import build_profile

# A dense model, a big dense model at TP 8 (all-reduces), and two MoE models (expert reads
# depend on the batch size through miss**tokens).
CASES = [
    ("llama-3.1-8b", "h100-sxm", 1, "bf16"),
    ("llama-3.1-70b", "h100-sxm", 4, "bf16"),
    ("llama-3.1-405b", "h200", 8, "fp8"),
    ("mixtral-8x7b", "a100-80gb", 2, "bf16"),
    ("deepseek-v3", "h200", 8, "fp8"),
]
BUILDS = [steptime] + ([native.compiled_steptime] if native.compiled_steptime else [])


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(("model", "gpu", "tp", "precision"), CASES)
def test_step_times_are_bitwise_the_profiles(model, gpu, tp, precision, build):
    profile = build_profile(model, gpu, tp=tp, precision=precision, mem_util=0.9)
    st = build.step_times(profile)
    assert type(st) is build.StepTimes  # the mirror of ServingProfile.step_time_s was accepted
    step, decode = st.step, st.decode
    rng = np.random.default_rng(5)
    n = 3000
    seqs = rng.integers(1, 1025, n).tolist()
    ctx = rng.integers(0, 5_000_000, n).tolist()
    prefill = rng.choice([0, 1, 7, 300, 2048, 8192, 16_384, 40_000], n).tolist()
    pairs = (rng.random(n) * rng.choice([0.0, 1e3, 1e7, 3e9], n)).tolist()
    decoders = (rng.integers(0, 2, n) * rng.integers(0, 257, n)).tolist()
    want = profile.step_time_s
    for a, b in zip(seqs, ctx, strict=True):
        assert decode(a, b) == want(decode_seqs=a, decode_ctx_tokens=b)
    for p, q, d, c in zip(prefill, pairs, decoders, ctx, strict=True):
        assert step(p, q, d, c) == want(p, q, d, c)


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__)
def test_other_profiles_use_their_own_step_time(build):
    profile = FakeProfile()
    st = build.step_times(profile)
    assert type(st) is build.ProfileStepTimes
    assert isinstance(st, build.StepTimes)  # what the compiled replica's typed attribute takes
    for args in [(0, 0.0, 3, 900), (512, 1.5e5, 0, 0), (100, 2e4, 7, 12_000)]:
        assert st.step(*args) == profile.step_time_s(*args)
    assert st.decode(3, 900) == profile.step_time_s(decode_seqs=3, decode_ctx_tokens=900)


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__)
def test_a_profile_whose_formula_differs_is_not_mirrored(build):
    real = build_profile("llama-3.1-8b", "h100-sxm", tp=1, precision="bf16", mem_util=0.9)

    class Drifted(type(real)):
        def step_time_s(self, *args, **kwargs):  # e.g. someone changed the formula
            return 1.01 * super().step_time_s(*args, **kwargs)

    drifted = Drifted(**{f: getattr(real, f) for f in real.__dataclass_fields__})
    assert type(build.step_times(real)) is build.StepTimes  # checked, and remembered
    st = build.step_times(drifted)  # equal fields, another class: checked on its own
    assert type(st) is build.ProfileStepTimes
    assert st.step(300, 4.5e4, 4, 1000) == drifted.step_time_s(300, 4.5e4, 4, 1000)
    assert st.decode(4, 1000) == drifted.step_time_s(0, 0.0, 4, 1000)


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__)
def test_a_profile_is_checked_once(build, monkeypatch):
    monkeypatch.setattr(build, "_checked", {})
    real = build_profile("llama-3.1-8b", "h100-sxm", tp=1, precision="bf16", mem_util=0.9)
    assert type(build.step_times(real)) is build.StepTimes
    again = build_profile("llama-3.1-8b", "h100-sxm", tp=1, precision="bf16", mem_util=0.9)
    assert again is not real and again == real
    monkeypatch.setattr(build, "_check", lambda profile: pytest.fail("checked again"))
    st = build.step_times(again)
    assert type(st) is build.StepTimes and st.decode(4, 1000) == real.step_time_s(0, 0.0, 4, 1000)
