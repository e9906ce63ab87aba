"""`sim perf` through click's test runner."""

import json

from click.testing import CliRunner

from sim.cli import cli

KEYS = {
    "weights_gb_per_gpu",
    "kv_bytes_per_token",
    "kv_capacity_tokens",
    "fits",
    "min_gpus",
    "decode_step_ms",
    "decode_tokens_per_s",
    "prefill_ms",
    "ttft_ms",
}


def run(*args):
    return CliRunner().invoke(cli, ["perf", *args])


def test_json_has_issue_keys_and_defaults():
    res = run("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert KEYS <= set(out)
    assert (
        out["tp"],
        out["precision"],
        out["batch"],
        out["context_tokens"],
        out["prompt_tokens"],
    ) == (
        1,
        "bf16",
        1,
        1024,
        1024,
    )
    assert out["kv_bytes_per_token"] == 131_072
    assert out["decode_tokens_per_s"] == out["batch"] / (out["decode_step_ms"] / 1e3)
    assert out["ttft_ms"] > out["prefill_ms"]


def test_options_change_the_answer():
    res = run(
        "-m",
        "llama-3.1-70b",
        "-g",
        "h100-sxm",
        "--tp",
        "4",
        "--quant",
        "fp8",
        "--batch",
        "32",
        "--context",
        "4096",
        "--json",
    )
    out = json.loads(res.output)
    assert out["kv_bytes_per_token"] == 163_840  # FP8 KV: half of 327,680
    assert out["weights_gb_per_gpu"] < 20 and out["fits"]


def test_table_output_and_list():
    res = run("-m", "mixtral-8x7b", "-g", "a100-80gb", "--tp", "2")
    assert res.exit_code == 0 and "decode step" in res.output and "KV cache per token" in res.output
    res = run("--list", "--json")
    listing = json.loads(res.output)
    assert "deepseek-v3" in listing["models"] and "mi300x" in listing["gpus"]


def test_unknown_model_exits_2_with_one_line():
    res = run("--model", "gpt-9", "--gpu", "h100-sxm")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model: gpt-9: unknown model")


def test_bad_tp_and_missing_gpu_exit_2():
    assert run("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "3").exit_code == 2
    assert run("--model", "llama-3.1-8b").exit_code == 2
    assert run("--model", "llama-3.1-8b", "--gpu", "l4", "--batch", "0").exit_code == 2


def test_help_has_example():
    res = run("--help")
    assert res.exit_code == 0 and "Example:" in res.output


def test_sparsity_option_uses_2_4_on_h100():
    dense = json.loads(run("-m", "llama-3.1-8b", "-g", "h100-sxm", "--json").output)
    sparse = json.loads(
        run("-m", "llama-3.1-8b", "-g", "h100-sxm", "--sparsity", "0.5", "--json").output
    )
    assert sparse["sparse_2_4"] and not dense["sparse_2_4"]
    assert sparse["weights_gb_per_gpu"] < 0.65 * dense["weights_gb_per_gpu"]
    assert sparse["gpu_memory_gb_for_batch"] < dense["gpu_memory_gb_for_batch"]
    bad = run("-m", "llama-3.1-8b", "-g", "h100-sxm", "--sparsity", "1.5")
    assert bad.exit_code == 2 and "sparsity" in bad.output
