"""`sim perf`: memory and speed of one model on one GPU type, from the serving-physics model."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Column, Table

from sim.cli import cli
from sim.errors import InputError
from sim.perf import (
    build_profile,
    get_precision,
    kv_bytes_per_token,
    list_gpus,
    list_models,
    load_gpu,
    load_model,
    requirements,
)
from sim.perf.precision import PRECISIONS


def perf_report(
    model: str,
    gpu: str,
    *,
    tp: int = 1,
    quant: str = "bf16",
    batch: int = 1,
    context: int = 1024,
    prompt: int = 1024,
    kv_dtype: str | None = None,
    sparsity: float = 0.0,
    engine_profile: str = "vllm-v1",
) -> dict:
    """The figures `sim perf` prints, as one flat dict."""
    for name, value in (("--batch", batch), ("--context", context), ("--prompt", prompt)):
        if value < 1:
            raise InputError("sim perf", name, f"must be >= 1, got {value}")
    profile = build_profile(
        model,
        gpu,
        tp=tp,
        precision=quant,
        kv_dtype=kv_dtype,
        sparsity=sparsity,
        engine_profile=engine_profile,
    )
    decode_s = profile.decode_step_s(batch, context)
    prefill_s = profile.prefill_time_s(prompt)
    req = requirements(
        profile.model,
        profile.precision,
        profile.gpu,
        context_tokens=context,
        batch=batch,
        sparsity=sparsity,
    )
    return {
        "model": profile.model.name,
        "gpu": profile.gpu.name,
        "engine_profile": profile.engine,
        "tp": tp,
        "precision": profile.precision.name,
        "batch": batch,
        "context_tokens": context,
        "prompt_tokens": prompt,
        "weights_gb_per_gpu": profile.weights_bytes_per_gpu / 1e9,
        "weights_gb_total": profile.weights_bytes_total / 1e9,
        "kv_bytes_per_token": profile.kv_bytes_per_token,
        "kv_capacity_tokens": profile.kv_capacity_tokens,
        "max_batch_at_context": profile.max_decode_batch(context),
        "fits": profile.fits,
        "fit_context_tokens": profile.fit_context_tokens,
        "min_gpus": profile.min_gpus,
        "decode_step_ms": decode_s * 1e3,
        "decode_tokens_per_s": batch / decode_s,
        "prefill_ms": prefill_s * 1e3,
        "ttft_ms": (prefill_s + decode_s) * 1e3,
        "sparse_2_4": profile.sparse_2_4,
        "gpus_needed_for_batch": req["gpus_needed"],
        "gpu_memory_gb_for_batch": req["gpu_memory_gb"],
        "host_ram_gb": req["host_ram_gb"],
        "power_w_per_gpu_busy": profile.power_w(1.0),
    }


_LABELS = {
    "weights_gb_per_gpu": ("weights per GPU", "{:.2f} GB"),
    "weights_gb_total": ("weights total", "{:.2f} GB"),
    "kv_bytes_per_token": ("KV cache per token", "{:,} B"),
    "kv_capacity_tokens": ("KV capacity (TP group)", "{:,} tokens"),
    "max_batch_at_context": ("sequences of --context that fit", "{:,}"),
    "fits": ("fits (one sequence of fit_context)", "{}"),
    "fit_context_tokens": ("fit_context", "{:,} tokens"),
    "min_gpus": ("min GPUs (TP) to fit", "{}"),
    "decode_step_ms": ("decode step", "{:.2f} ms"),
    "decode_tokens_per_s": ("decode throughput", "{:,.0f} tok/s"),
    "prefill_ms": ("prefill of --prompt", "{:.2f} ms"),
    "ttft_ms": ("TTFT (prefill + one decode step)", "{:.2f} ms"),
    "gpus_needed_for_batch": ("GPUs for batch x context", "{}"),
    "gpu_memory_gb_for_batch": ("GPU memory for batch x context", "{:.1f} GB"),
    "host_ram_gb": ("host RAM (rule of thumb)", "{:.0f} GB"),
    "power_w_per_gpu_busy": ("power per GPU, busy", "{:.0f} W"),
}


@cli.command("perf")
@click.option("--model", "-m", help="Catalog model name, or a path to a config.json / .toml entry.")
@click.option("--gpu", "-g", help="Catalog GPU name (see --list).")
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel GPUs.")
@click.option(
    "--quant",
    "-q",
    type=click.Choice(sorted(PRECISIONS), case_sensitive=False),
    default="bf16",
    show_default=True,
    help="Precision of weights (and KV cache, unless --kv-dtype).",
)
@click.option("--kv-dtype", default=None, help="KV-cache dtype override: bf16, fp16, fp8, int8.")
@click.option("--batch", "-b", type=int, default=1, show_default=True, help="Sequences decoding.")
@click.option(
    "--context", "-c", type=int, default=1024, show_default=True, help="KV tokens per sequence."
)
@click.option(
    "--prompt", "-p", type=int, default=1024, show_default=True, help="Prompt tokens for prefill."
)
@click.option(
    "--sparsity",
    type=float,
    default=0.0,
    show_default=True,
    help="Pruned fraction; 0.5 on GPUs with 2:4 sparse tensor cores counts as 2:4.",
)
@click.option(
    "--profile",
    "engine_profile",
    default="vllm-v1",
    show_default=True,
    help="Engine profile (vllm-0.5, vllm-0.6, vllm-v1, sglang, trtllm) or a profile TOML path.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--list", "list_only", is_flag=True, help="List catalog models and GPUs, then exit.")
def perf(
    model,
    gpu,
    tp,
    quant,
    kv_dtype,
    batch,
    context,
    prompt,
    sparsity,
    engine_profile,
    as_json,
    list_only,
):
    """Memory and step times of MODEL on GPU: weights, KV cache, decode and prefill speed.

    Step times come from the engine profile's step-time model (docs/calibration.md: physics
    terms with constants fitted per engine, error quoted on held-out serving runs). TTFT here is
    one prompt alone plus one decode step, with no queueing.

    Example:

        sim perf --model llama-3.1-8b --gpu h100-sxm --batch 16 --context 2048

        sim perf --model llama-3.1-70b --gpu a100-80gb --tp 4 --quant fp8 --json

        sim perf --list
    """
    if list_only:
        if as_json:
            click.echo(json.dumps({"models": list_models(), "gpus": list_gpus()}))
            return
        console = Console()
        # Names whole (no_wrap): they are what --model takes, a cut one cannot be pasted back.
        t = Table(
            Column("model", no_wrap=True), "params B", "active B", "max context", "KV B/token bf16"
        )
        for name in list_models():
            m = load_model(name)
            kv = kv_bytes_per_token(m, get_precision("bf16"))
            t.add_row(
                name,
                f"{m.total_params / 1e9:.1f}",
                f"{m.active_params / 1e9:.1f}",
                f"{m.max_context:,}",
                f"{kv:,}",
            )
        console.print(t)
        t = Table(
            Column("gpu", no_wrap=True),
            "memory GB",
            "bandwidth GB/s",
            "BF16 TFLOPS",
            "FP8 TFLOPS",
            "power W",
        )
        for name in list_gpus():
            g = load_gpu(name)
            fp8 = f"{g.fp8_tflops:.0f}" if g.fp8_tflops else "-"
            t.add_row(
                name,
                f"{g.memory_gb:.0f}",
                f"{g.bandwidth_gbps:,.0f}",
                f"{g.bf16_tflops:.0f}",
                fp8,
                f"{g.idle_w:.0f}-{g.max_w:.0f}",
            )
        console.print(t)
        return
    if not model:
        raise InputError("sim perf", "--model", "required (or use --list)")
    if not gpu:
        raise InputError("sim perf", "--gpu", "required (or use --list)")
    report = perf_report(
        model,
        gpu,
        tp=tp,
        quant=quant.lower(),
        batch=batch,
        context=context,
        prompt=prompt,
        kv_dtype=kv_dtype,
        sparsity=sparsity,
        engine_profile=engine_profile,
    )
    if as_json:
        click.echo(json.dumps(report))
        return
    title = (
        f"{report['model']} on {tp} x {report['gpu']}, {report['precision']}, "
        f"{report['engine_profile']}, "
        f"batch {batch}, context {context}, prompt {prompt}"
    )
    t = Table("quantity", "value", title=title)
    for key, (label, fmt) in _LABELS.items():
        t.add_row(label, fmt.format(report[key]))
    Console().print(t)
