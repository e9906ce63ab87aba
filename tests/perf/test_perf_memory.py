"""Memory formulas against hand calculations (inference_facts.md "Memory", copied into
docs/calibration.md)."""

import pytest

from sim.perf import build_profile, get_precision, kv_bytes_per_token, load_model, requirements

GIB = 1024**3


def test_llama3_8b_fp16_kv_is_128_kib_per_token():
    # 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x 2 B = 131,072 B
    assert kv_bytes_per_token(load_model("llama-3.1-8b"), get_precision("fp16")) == 131_072


def test_llama3_70b_kv_is_320_kib_per_token():
    # 2 x 80 x 8 x 128 x 2 = 327,680 B
    assert kv_bytes_per_token(load_model("llama-3.1-70b"), get_precision("bf16")) == 327_680


def test_llama2_7b_without_gqa_needs_4x_llama3_8b():
    bf16 = get_precision("bf16")
    llama2 = kv_bytes_per_token(load_model("llama-2-7b"), bf16)
    llama3 = kv_bytes_per_token(load_model("llama-3.1-8b"), bf16)
    assert llama2 == 4 * llama3 == 524_288


def test_deepseek_v3_mla_cache_is_latent_not_gqa():
    # (kv_lora_rank 512 + qk_rope_head_dim 64) x 61 layers x 2 B = 70,272 B; the GQA formula with
    # 128 KV heads would give 2 x 61 x 128 x 128 x 2 = 3,997,696 B.
    assert kv_bytes_per_token(load_model("deepseek-v3"), get_precision("bf16")) == 70_272
    assert kv_bytes_per_token(load_model("deepseek-v3"), get_precision("fp8")) == 35_136


def test_fp8_halves_kv_and_int4_keeps_16_bit_kv():
    model = load_model("llama-3.1-8b")
    assert kv_bytes_per_token(model, get_precision("fp8")) == 65_536
    assert kv_bytes_per_token(model, get_precision("int4")) == 131_072
    assert kv_bytes_per_token(model, get_precision("int4", kv_dtype="fp8")) == 65_536


def test_weights_bf16_are_two_bytes_per_parameter():
    profile = build_profile("llama-3.1-8b", "h100-sxm")
    assert profile.weights_bytes_total == pytest.approx(8.03e9 * 2, rel=1e-9)
    tp2 = build_profile("llama-3.1-70b", "h100-sxm", tp=2)
    assert tp2.weights_bytes_per_gpu == pytest.approx(70.55e9 * 2 / 2, rel=1e-9)


def test_int4_weights_include_group_scales_and_16_bit_embeddings():
    model = load_model("llama-3.1-8b")
    profile = build_profile(model, "l4", precision="int4")
    embed = 2 * 128_256 * 4096  # input embedding + untied LM head, kept in 16 bits
    expected = (8.03e9 - embed) * (0.5 + 2.5 / 128) + embed * 2
    assert profile.weights_bytes_total == pytest.approx(expected, rel=1e-9)


def test_kv_capacity_hand_calculation_llama3_8b_h100():
    profile = build_profile("llama-3.1-8b", "h100-sxm", mem_util=0.9)
    # 80 GiB x 0.9 - 16.06 GB weights - reserve (1 GiB + 8192 tokens x (4x4096 + 2x14336) x 2 B
    # + 256 x 128,256 x 4 B logits), over 131,072 B per token.
    reserve = GIB + 8192 * (4 * 4096 + 2 * 14336) * 2 + 256 * 128_256 * 4
    # Whole 16-token KV blocks.
    expected = (80 * GIB * 0.9 - 16.06e9 - reserve) // 131_072 // 16 * 16
    assert profile.kv_capacity_tokens == int(expected)
    assert 440_000 < profile.kv_capacity_tokens < 460_000


def test_fit_and_min_gpus():
    # 70B bf16 = 141 GB: not on one 80 GB GPU, yes on two.
    one = build_profile("llama-3.1-70b", "h100-sxm", tp=1)
    assert not one.fits and one.kv_capacity_tokens == 0
    assert one.min_gpus == 2
    assert build_profile("llama-3.1-70b", "h100-sxm", tp=2).fits
    # 405B bf16 = 812 GB: needs 16 H100s (8 x 80 GiB = 687 GB is too small).
    assert build_profile("llama-3.1-405b", "h100-sxm", tp=8).min_gpus == 16
    # ... and 8 with FP8 weights.
    assert build_profile("llama-3.1-405b", "h100-sxm", tp=8, precision="fp8").min_gpus == 8


def test_requirements_report():
    req = requirements("llama-3.1-70b", "bf16", "a100-80gb", context_tokens=8192, batch=16)
    assert req["weights_gb"] == pytest.approx(141.1, rel=1e-3)
    assert req["kv_cache_gb"] == pytest.approx(327_680 * 8192 * 16 / 1e9)
    assert req["gpus_needed"] == 4  # 2 x 80 GiB holds the weights but not 43 GB of KV as well
    assert req["host_ram_gb"] > req["weights_gb"]
    assert req["gpu_memory_gb"] > req["weights_gb"] + req["kv_cache_gb"]


def test_2_4_sparsity_only_on_supporting_gpus():
    dense = build_profile("llama-3.1-8b", "h100-sxm")
    sparse = build_profile("llama-3.1-8b", "h100-sxm", sparsity=0.5)
    assert sparse.sparse_2_4
    assert sparse.weights_bytes_total < 0.6 * dense.weights_bytes_total + 2.2e9
    assert sparse.prefill_time_s(4096) < dense.prefill_time_s(4096)
    # T4 has no 2:4 tensor cores; unstructured 30% sparsity never helps dense kernels.
    t4 = build_profile("llama-3.1-8b", "t4", precision="int4", sparsity=0.5)
    assert not t4.sparse_2_4
    unstructured = build_profile("llama-3.1-8b", "h100-sxm", sparsity=0.3)
    assert unstructured.weights_bytes_total == dense.weights_bytes_total
    assert unstructured.decode_step_s(8, 1024) == dense.decode_step_s(8, 1024)
