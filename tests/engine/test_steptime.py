"""The jump's fast decode-only step time must give exactly the perf model's floats."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FakeProfile

from sim.engine.steptime import decode_step_time
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


@pytest.mark.parametrize(("model", "gpu", "tp", "precision"), CASES)
def test_fast_decode_step_time_is_bitwise_the_profiles(model, gpu, tp, precision):
    profile = build_profile(model, gpu, tp=tp, precision=precision, mem_util=0.9)
    fast = decode_step_time(profile)
    assert fast.__name__ == "fast"  # the mirror of ServingProfile.step_time_s was accepted
    rng = np.random.default_rng(5)
    for n, ctx in zip(
        rng.integers(1, 1025, 2000).tolist(), rng.integers(0, 5_000_000, 2000).tolist(), strict=True
    ):
        assert fast(n, ctx) == profile.step_time_s(decode_seqs=n, decode_ctx_tokens=ctx)


def test_other_profiles_use_their_own_step_time():
    profile = FakeProfile()
    f = decode_step_time(profile)
    assert f.__name__ == "generic"
    assert f(3, 900) == profile.step_time_s(decode_seqs=3, decode_ctx_tokens=900)


def test_a_profile_whose_formula_differs_is_not_mirrored():
    real = build_profile("llama-3.1-8b", "h100-sxm", tp=1, precision="bf16", mem_util=0.9)

    class Drifted(type(real)):
        def step_time_s(self, *args, **kwargs):  # e.g. P changed the formula
            return 1.01 * super().step_time_s(*args, **kwargs)

    drifted = Drifted(**{f: getattr(real, f) for f in real.__dataclass_fields__})
    assert decode_step_time(drifted).__name__ == "generic"
