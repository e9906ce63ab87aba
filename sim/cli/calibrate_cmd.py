"""`sim calibrate`: replay vLLM benchmark result files through the engine, print the errors, and
optionally fit an engine profile to them."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sim.cli import cli
from sim.errors import InputError
from sim.perf import build_profile
from sim.perf.engines import load_engine_profile, profile_toml
from sim.perf.fit import DEFAULT_FIT_PARAMS, fit_calibration, leave_one_out, median_abs
from sim.perf.precision import PRECISIONS
from sim.perf.replay import (
    ENGINE_LIMITS,
    METRICS,
    EngineLimits,
    compare,
    read_bench_result,
    simulate_run,
)


def calibrate_report(
    paths,
    *,
    model: str,
    gpu: str,
    tp: int,
    precision: str,
    kv_dtype: str | None = None,
    max_num_seqs: int | None = None,
    max_batched_tokens: int | None = None,
    profile: str = "vllm-v1",
) -> dict:
    """{"runs": [{file, measured, simulated, error}], "aggregate": {"median_abs_error": {...}}}."""
    runs = [read_bench_result(p) for p in paths]
    cal = load_engine_profile(profile)
    limits = _limits(profile, max_num_seqs, max_batched_tokens)
    serving = build_profile(
        model, gpu, tp=tp, precision=precision, kv_dtype=kv_dtype, calibration=cal
    )
    out = []
    for path, run in zip(paths, runs, strict=True):
        sim = simulate_run(run, serving, limits)
        out.append(
            {
                "file": str(path),
                "requests": len(run.input_lens),
                "request_rate": None if math.isinf(run.request_rate) else run.request_rate,
                "max_concurrency": run.max_concurrency,
                "measured": run.measured,
                "simulated": {k: sim[k] for k in METRICS},
                "error": compare(run.measured, sim),
            }
        )
    return {
        "profile": cal.name,
        "setup": {"model": model, "gpu": gpu, "tp": tp, "precision": precision},
        "runs": out,
        "aggregate": {"median_abs_error": median_abs([r["error"] for r in out])},
    }


def _limits(profile: str, max_num_seqs, max_batched_tokens) -> EngineLimits:
    base = ENGINE_LIMITS.get(profile, EngineLimits())
    for flag, value in (
        ("--max-num-seqs", max_num_seqs),
        ("--max-batched-tokens", max_batched_tokens),
    ):
        if value is not None and value < 1:
            raise InputError("sim calibrate", flag, f"must be >= 1, got {value}")
    return replace(
        base,
        max_num_seqs=max_num_seqs or base.max_num_seqs,
        max_batched_tokens=max_batched_tokens or base.max_batched_tokens,
    )


def fit_profile(paths, out: Path, *, model, gpu, tp, precision, kv_dtype, limits, profile) -> dict:
    """Fit the profile's constants to all runs, write OUT, and report leave-one-out error."""
    runs = [read_bench_result(p) for p in paths]
    base = load_engine_profile(profile)

    def build(_run, cal):
        return build_profile(
            model, gpu, tp=tp, precision=precision, kv_dtype=kv_dtype, calibration=cal
        )

    def lim(_run):
        return limits

    fitted = fit_calibration(runs, base, build, lim, DEFAULT_FIT_PARAMS)
    held = leave_one_out(runs, base, build, lim) if len(runs) >= 2 else []
    held_med = median_abs(held)
    meta = {
        "name": out.stem,
        "engine": f"fitted from {profile}",
        "version": "user calibration",
        "fitted_on": [str(p) for p in paths],
        "fitted_params": list(fitted.params),
        "fit_rms_log_error": round(math.sqrt(fitted.train_cost), 4),
        "held_out_median_abs_error": [f"{k}={v:.3f}" for k, v in held_med.items()],
        "setup": f"{model} on {tp} x {gpu}, {precision}",
    }
    out.write_text(profile_toml(meta, fitted.calibration))
    return {"profile_file": str(out), "held_out_median_abs_error": held_med, "fit": meta}


@cli.command("calibrate")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "-m", required=True, help="Catalog model name or config.json path.")
@click.option("--gpu", "-g", required=True, help="Catalog GPU name.")
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel GPUs.")
@click.option(
    "--precision",
    "-q",
    type=click.Choice(sorted(PRECISIONS), case_sensitive=False),
    default="bf16",
    show_default=True,
    help="Weight precision of the served checkpoint.",
)
@click.option("--kv-dtype", default=None, help="KV-cache dtype if not the weights' (e.g. bf16).")
@click.option("--max-num-seqs", type=int, default=None, help="The server's --max-num-seqs.")
@click.option(
    "--max-batched-tokens", type=int, default=None, help="The server's --max-num-batched-tokens."
)
@click.option(
    "--profile",
    default="vllm-v1",
    show_default=True,
    help="Engine profile name (vllm-0.5, vllm-0.6, vllm-v1, sglang, trtllm) or a profile TOML.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--fit",
    "fit_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Fit the profile's constants to these runs and write them to this TOML.",
)
def calibrate(
    results,
    model,
    gpu,
    tp,
    precision,
    kv_dtype,
    max_num_seqs,
    max_batched_tokens,
    profile,
    as_json,
    fit_out,
):
    """Replay benchmark RESULTS (vLLM `benchmark_serving.py --save-result` or `vllm bench serve
    --save-result` JSON files, with per-request details) through the engine model and print the
    error of throughput, TTFT, TPOT, ITL and E2E per run and in aggregate.

    Each run is replayed with its own prompt and output lengths and arrival process (rate inf:
    all at t=0; a rate: Poisson; --max-concurrency: a cap on sequences in flight). --fit fits
    the profile's constants (least squares on log errors, needs scipy: pip install
    'infercost[calibrate]'), prints the leave-one-out error and writes a profile TOML that a
    scenario names with engine.profile = "path/to/it.toml".

    Example:

        sim calibrate runs/*.json --model llama-3.1-8b --gpu h100-sxm --tp 1 --precision bf16

        sim calibrate runs/*.json -m llama-3.1-70b -g h100-sxm --tp 4 --fit my-h100.toml
    """
    setup = {
        "model": model,
        "gpu": gpu,
        "tp": tp,
        "precision": precision.lower(),
        "kv_dtype": kv_dtype,
        "profile": profile,
    }
    report = calibrate_report(
        list(results),
        max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
        **setup,
    )
    if fit_out is not None:
        try:
            import scipy  # noqa: F401
        except ModuleNotFoundError:
            raise InputError(
                "sim calibrate", "--fit", "needs scipy: pip install 'infercost[calibrate]'"
            ) from None
        limits = _limits(profile, max_num_seqs, max_batched_tokens)
        report["fit"] = fit_profile(list(results), Path(fit_out), limits=limits, **setup)
    if as_json:
        click.echo(json.dumps(_finite(report)))
        return
    console = Console()
    t = Table(
        "run", "metric", "measured", "simulated", "error", title=f"profile {report['profile']}"
    )
    for run in report["runs"]:
        for metric, err in run["error"].items():
            t.add_row(
                Path(run["file"]).name,
                metric,
                f"{run['measured'][metric]:,.2f}",
                f"{run['simulated'][metric]:,.2f}",
                f"{err:+.1%}",
            )
    console.print(t)
    agg = Table("metric", "median |error|", title="aggregate")
    for metric, err in report["aggregate"]["median_abs_error"].items():
        agg.add_row(metric, f"{err:.1%}")
    console.print(agg)
    if "fit" in report:
        held = report["fit"]["held_out_median_abs_error"]
        console.print(f"wrote {report['fit']['profile_file']}")
        console.print(
            "leave-one-out median |error|: "
            + (", ".join(f"{k} {v:.1%}" for k, v in held.items()) or "needs >= 2 runs")
        )


def _finite(value):
    """The report with NaN (a metric the replay could not produce) as null: valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
