"""Step-time model: monotonic properties (hypothesis), MoE and TP behaviour, and the decode-step
floors of sim/perf/calibration.py (accuracy against serving runs: tests/perf/test_validation.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.perf import build_profile, list_gpus
from sim.perf.calibration import FLOOR_CASES, floors_ms, ratio_limit

MODELS = ["llama-3.1-8b", "llama-2-70b", "mixtral-8x7b", "deepseek-v3", "qwen2.5-72b"]
PROFILES = {
    (m, g, tp, q): build_profile(m, g, tp=tp, precision=q)
    for m in MODELS
    for g in ("h100-sxm", "a100-40gb", "l4", "mi300x")
    for tp in (1, 8)
    for q in ("bf16", "fp8", "int4")
}
profiles = st.sampled_from(sorted(PROFILES))


@settings(max_examples=200, deadline=None)
@given(
    key=profiles, batch=st.integers(1, 512), extra=st.integers(1, 256), ctx=st.integers(1, 32768)
)
def test_larger_batch_never_faster(key, batch, extra, ctx):
    p = PROFILES[key]
    assert p.decode_step_s(batch + extra, ctx) >= p.decode_step_s(batch, ctx)


@settings(max_examples=200, deadline=None)
@given(
    key=profiles, batch=st.integers(1, 512), ctx=st.integers(1, 32768), extra=st.integers(1, 8192)
)
def test_longer_context_never_faster(key, batch, ctx, extra):
    p = PROFILES[key]
    assert p.decode_step_s(batch, ctx + extra) >= p.decode_step_s(batch, ctx)
    assert p.prefill_time_s(ctx + extra) >= p.prefill_time_s(ctx)


@settings(max_examples=100, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    gpu=st.sampled_from(list_gpus()),
    quant=st.sampled_from(["bf16", "fp8", "int8", "int4"]),
    mem_util=st.floats(0.5, 0.95),
)
def test_more_gpus_never_reduce_kv_capacity(model, gpu, quant, mem_util):
    caps = [
        build_profile(model, gpu, tp=tp, precision=quant, mem_util=mem_util).kv_capacity_tokens
        for tp in (1, 2, 4, 8)
    ]
    assert caps == sorted(caps)


@settings(max_examples=100, deadline=None)
@given(
    key=profiles,
    prefill=st.integers(0, 8192),
    pairs=st.floats(0, 1e8),
    seqs=st.integers(0, 256),
    ctx=st.integers(0, 10**6),
)
def test_step_time_positive_and_finite(key, prefill, pairs, seqs, ctx):
    t = PROFILES[key].step_time_s(prefill, pairs, seqs, ctx if seqs else 0)
    assert t == 0.0 if prefill + seqs == 0 else 0.0 < t < 1e4


@settings(max_examples=200, deadline=None)
@given(
    key=profiles,
    base=st.tuples(
        st.integers(0, 8192), st.floats(0, 1e8), st.integers(0, 256), st.integers(0, 10**6)
    ),
    which=st.integers(0, 3),
    more=st.integers(1, 10**5),
)
def test_step_time_monotone_in_every_argument(key, base, which, more):
    grown = list(base)
    grown[which] += more
    assert PROFILES[key].step_time_s(*grown) >= PROFILES[key].step_time_s(*base)


def test_prefill_is_superlinear_in_prompt_length():
    # Attention is quadratic in the prompt: 32k tokens cost more than 8 x 4k tokens.
    p = build_profile("llama-3.1-8b", "h100-sxm")
    assert p.prefill_time_s(32768) > 8 * p.prefill_time_s(4096)


def test_moe_small_batch_reads_only_active_experts():
    p = build_profile("mixtral-8x7b", "h100-sxm", tp=2)
    # Batch 1 touches 2 of 8 experts: weight bytes ~ (12.9B active) x 2 B, far below 46.7B x 2 B.
    b1, b64 = p.decode_step_s(1, 16), p.decode_step_s(64, 16)
    dense_equiv = build_profile("llama-3.1-70b", "h100-sxm", tp=2).decode_step_s(1, 16)
    assert b1 < 0.45 * dense_equiv
    # At batch 64 virtually every expert is read: 1 - (6/8)^64 > 0.9999.
    assert b64 > 2.5 * b1


def test_tensor_parallel_speeds_up_weight_bound_decode():
    tp1 = build_profile("llama-3.1-70b", "h200", tp=1).decode_step_s(1, 1024)
    tp2 = build_profile("llama-3.1-70b", "h200", tp=2).decode_step_s(1, 1024)
    tp4 = build_profile("llama-3.1-70b", "h200", tp=4).decode_step_s(1, 1024)
    tp8 = build_profile("llama-3.1-70b", "h200", tp=8).decode_step_s(1, 1024)
    # Custom all-reduce over NVLink costs ~10-20 us per call, 160 calls per step: TP8 still
    # gains, but well short of 8x.
    assert tp4 < tp2 < tp1
    assert tp1 / 8 < tp8 < tp1


def test_fp8_speeds_up_on_h100_but_only_weights_on_a100():
    h_bf16 = build_profile("llama-3.1-8b", "h100-sxm")
    h_fp8 = build_profile("llama-3.1-8b", "h100-sxm", precision="fp8")
    assert h_fp8.decode_step_s(1, 1024) < 0.65 * h_bf16.decode_step_s(1, 1024)
    assert h_fp8.prefill_time_s(8192) < 0.65 * h_bf16.prefill_time_s(8192)
    a_bf16 = build_profile("llama-3.1-8b", "a100-80gb")
    a_fp8 = build_profile("llama-3.1-8b", "a100-80gb", precision="fp8")
    # A100 has no FP8 units: weight-only FP8 halves the bytes but the GEMMs stay at BF16 rate.
    assert a_fp8.decode_step_s(1, 1024) < 0.65 * a_bf16.decode_step_s(1, 1024)
    assert a_fp8.prefill_time_s(8192) == pytest.approx(a_bf16.prefill_time_s(8192), rel=0.02)


@pytest.mark.parametrize(
    "case", FLOOR_CASES, ids=[f"{c.model}-{c.gpu}-tp{c.tp}-b{c.batch}" for c in FLOOR_CASES]
)
def test_decode_step_sits_just_above_the_floors(case):
    sim, bandwidth_floor, linear_floor = floors_ms(case)
    assert sim > bandwidth_floor
    assert sim > 0.8 * linear_floor  # GEMMs run at most ~0.85-0.9 of the datasheet bandwidth
    assert sim <= ratio_limit(case) * linear_floor, f"{sim:.2f} ms vs floor {linear_floor:.2f} ms"


def test_pcie_all_reduce_costs_more_than_nvlink():
    # Same model, TP and bandwidth class: the PCIe group pays NCCL-over-PCIe latency per call.
    nvlink = build_profile("llama-3.1-8b", "h100-sxm", tp=2)
    pcie = build_profile("llama-3.1-8b", "h100-pcie", tp=2)
    assert pcie._ar_large_s > nvlink._ar_small_s
    assert pcie._ar_small_max_bytes < 0 < nvlink._ar_small_max_bytes


def test_all_reduce_grows_with_message_size():
    p = build_profile("llama-3.1-70b", "h100-sxm", tp=8)
    small = p.step_time_s(decode_seqs=1, decode_ctx_tokens=1)
    big = p.step_time_s(prefill_tokens=8192, prefill_attn_pairs=1.0)
    # 8192 tokens x 8192 hidden x 2 B = 128 MiB per all-reduce: NCCL ring at link speed.
    ring_s = p._allreduces * (p._ar_large_s + 8192 * p._ar_bytes_per_token * p._ar_s_per_byte)
    assert big > ring_s > 10 * (small - p._step_overhead_s)


def test_eager_steps_above_the_cuda_graph_limit():
    p = build_profile("llama-3.1-8b", "h100-sxm", engine_profile="vllm-v1")
    below = p.step_time_s(decode_seqs=p._graph_max_tokens, decode_ctx_tokens=1000)
    above = p.step_time_s(decode_seqs=p._graph_max_tokens + 1, decode_ctx_tokens=1000)
    # Up to cpu_overlap of the extra GPU time can hide behind the CPU's share of the step.
    assert above - below >= (1 - p._cpu_overlap) * p._eager_launch_s


def test_kv_is_read_in_whole_blocks():
    p = build_profile("llama-3.1-8b", "h100-sxm")
    assert p.kv_capacity_tokens % p.kv_block_tokens == 0
    one = p.step_time_s(decode_seqs=1, decode_ctx_tokens=1)
    assert one > p.step_time_s(decode_seqs=1, decode_ctx_tokens=0)


def test_power_and_weight_load():
    p = build_profile("llama-3.1-70b", "h100-sxm", tp=4)
    assert p.power_w(0.0) == 75 and p.power_w(1.0) == 700 and p.power_w(0.5) == 387.5
    assert p.power_w(2.0) == 700
    # 141 GB at 2 GB/s: ~71 s, in line with "about 60 s for 70B" loading reports.
    assert p.weight_load_s(2.0) == pytest.approx(70.55e9 * 2 / 2e9, rel=1e-3)
