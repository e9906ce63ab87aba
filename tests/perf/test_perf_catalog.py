"""Catalog contents and user extension (HF config.json, TOML entries, $INFERCOST_CATALOG_DIR)."""

import json

import pytest

from sim.errors import InputError
from sim.perf import list_gpus, list_models, load_gpu, load_model

REQUIRED_MODELS = [
    "llama-2-7b",
    "llama-2-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "codellama-34b",
    "mixtral-8x7b",
    "deepseek-v3",
    "qwen2.5-72b",
]
REQUIRED_GPUS = [
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h200",
    "b200",
    "l40s",
    "a40",
    "l4",
    "a10g",
    "t4",
    "mi300x",
]


def test_catalog_has_required_entries():
    assert set(REQUIRED_MODELS) <= set(list_models())
    assert set(REQUIRED_GPUS) <= set(list_gpus())
    for name in REQUIRED_MODELS:
        assert load_model(name).source


@pytest.mark.parametrize(
    "name, published",
    # Model cards: 6.74B, 68.98B, 8.03B, 70.55B, 405.85B, 33.7B, 46.7B, 72.7B parameters.
    [
        ("llama-2-7b", 6.74e9),
        ("llama-2-70b", 68.98e9),
        ("llama-3.1-8b", 8.03e9),
        ("llama-3.1-70b", 70.55e9),
        ("llama-3.1-405b", 405.85e9),
        ("codellama-34b", 33.74e9),
        ("mixtral-8x7b", 46.7e9),
        ("qwen2.5-72b", 72.7e9),
    ],
)
def test_shapes_reproduce_published_parameter_counts(name, published):
    from sim.perf.catalog import count_params

    m = load_model(name)
    total, _ = count_params(
        layers=m.layers,
        hidden=m.hidden,
        heads=m.heads,
        kv_heads=m.kv_heads,
        head_dim=m.head_dim,
        ffn=m.ffn,
        vocab=m.vocab,
        experts=m.experts,
        experts_per_token=m.experts_per_token,
        expert_ffn=m.expert_ffn,
        moe_layers=m.moe_layers,
    )
    # Biases (Qwen's QKV) are ignored by count_params: 0.5% allowance.
    assert total == pytest.approx(published, rel=0.005)


def test_moe_active_vs_total():
    mixtral = load_model("mixtral-8x7b")
    assert mixtral.active_params == pytest.approx(12.9e9, rel=0.01)  # model card: 12.9B active
    ds = load_model("deepseek-v3")
    assert (ds.total_params, ds.active_params) == (671e9, 37e9)
    # 256 routed experts x 58 layers x 3 x 7168 x 2048 = 654B of the 671B are routed experts.
    assert ds.routed_expert_params == pytest.approx(653.9e9, rel=1e-3)


def test_lookup_is_case_insensitive_and_unknown_lists_names():
    assert load_model("Llama-3.1-8B").name == "llama-3.1-8b"
    assert load_gpu("H100-SXM").memory_gb == 80
    with pytest.raises(InputError, match="known: .*llama-3.1-8b"):
        load_model("gpt-5")
    with pytest.raises(InputError, match="known: .*h100-sxm"):
        load_gpu("h900")


def test_gpu_datasheet_figures():
    # inference_facts.md datasheet table.
    h100 = load_gpu("h100-sxm")
    assert (h100.bandwidth_gbps, h100.bf16_tflops, h100.fp8_tflops, h100.idle_w) == (
        3350,
        989,
        1979,
        75,
    )
    assert load_gpu("a100-80gb").fp8_tflops is None
    assert not load_gpu("t4").sparsity_2_4


LLAMA3_8B_CONFIG = {  # meta-llama/Llama-3.1-8B config.json, fields the loader reads
    "_name_or_path": "my-llama",
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
}
MIXTRAL_CONFIG = {  # mistralai/Mixtral-8x7B-v0.1 config.json
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 32000,
    "max_position_embeddings": 32768,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
}
DEEPSEEK_V3_CONFIG = {  # deepseek-ai/DeepSeek-V3 config.json
    "num_hidden_layers": 61,
    "hidden_size": 7168,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "vocab_size": 129280,
    "max_position_embeddings": 163840,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "kv_lora_rank": 512,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}


def test_hf_config_dense(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA3_8B_CONFIG))
    m = load_model(str(path))
    assert m.name == "my-llama" and m.head_dim == 128 and m.kv_heads == 8
    assert m.total_params == pytest.approx(8.03e9, rel=0.002)


def test_hf_config_moe_and_mla(tmp_path):
    (tmp_path / "mixtral.json").write_text(json.dumps(MIXTRAL_CONFIG))
    mix = load_model(str(tmp_path / "mixtral.json"))
    assert mix.total_params == pytest.approx(46.7e9, rel=0.005)
    assert mix.active_params == pytest.approx(12.9e9, rel=0.005)
    (tmp_path / "ds.json").write_text(json.dumps(DEEPSEEK_V3_CONFIG))
    ds = load_model(str(tmp_path / "ds.json"))
    assert ds.kv_bytes_per_token_override == 70_272
    assert ds.total_params == pytest.approx(671e9, rel=0.01)  # DeepSeek-V3 report: 671B
    assert ds.active_params == pytest.approx(37e9, rel=0.03)  # ... 37B activated


def test_broken_config_names_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096,\n oops}')
    with pytest.raises(InputError) as err:
        load_model(str(path))
    assert str(path) in str(err.value) and err.value.line == 2
    path.write_text(json.dumps({"hidden_size": 4096}))
    with pytest.raises(InputError, match="num_hidden_layers"):
        load_model(str(path))


def test_toml_entry_and_catalog_dir(tmp_path, monkeypatch):
    entry = tmp_path / "tiny.toml"
    entry.write_text(
        '["tiny-1b"]\nlayers = 16\nhidden = 2048\nheads = 32\nkv_heads = 8\nffn = 8192\n'
        "vocab = 128256\nmax_context = 8192\ntied_embeddings = true\n"
    )
    tiny = load_model(str(entry))
    assert tiny.name == "tiny-1b" and tiny.head_dim == 64
    assert tiny.total_params == pytest.approx(1.24e9, rel=0.01)  # Llama-3.2-1B shape: 1.24B
    (tmp_path / "models_extra.toml").write_text(entry.read_text())
    (tmp_path / "gpus_extra.toml").write_text(
        '["rtx-4090"]\nmemory_gb = 24\nbandwidth_gbps = 1008\nbf16_tflops = 165\n'
        "idle_w = 20\nmax_w = 450\n"
    )
    monkeypatch.setenv("INFERCOST_CATALOG_DIR", str(tmp_path))
    assert "tiny-1b" in list_models() and "rtx-4090" in list_gpus()
    assert load_gpu("rtx-4090").fp8_tflops is None


def test_bad_toml_field_is_input_error(tmp_path):
    entry = tmp_path / "bad.toml"
    entry.write_text(
        '["x"]\nlayers = 16\nhidden = 2048\nheads = 32\nvocab = 100\nmax_context = 8\nlayerz = 3\n'
    )
    with pytest.raises(InputError, match="x.layerz: unknown model field"):
        load_model(str(entry))


def test_bad_gpu_entry_is_input_error(tmp_path, monkeypatch):
    (tmp_path / "gpus_bad.toml").write_text(
        '["bad-gpu"]\nmemory_gb = 24\nbandwidth_gbps = "fast"\nbf16_tflops = 1\nidle_w = 1\nmax_w = 2\n'
    )
    monkeypatch.setenv("INFERCOST_CATALOG_DIR", str(tmp_path))
    with pytest.raises(InputError, match="bad-gpu.bandwidth_gbps: must be a non-negative number"):
        list_gpus()
