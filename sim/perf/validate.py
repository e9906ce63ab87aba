"""Fit the shipped engine profiles on the `fit` half of the validation set and report their error on
the `holdout` half (tests/data/serving/measurements.csv; sources in tests/data/serving/).

    python -m sim.perf.validate            # held-out table with the shipped profiles
    python -m sim.perf.validate --fit      # refit every profile that has runs, rewrite its TOML
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from sim.perf.engines import (
    PROFILE_DIR,
    load_engine_profile,
    profile_document,
    profile_toml,
    reload_profiles,
)
from sim.perf.fit import DEFAULT_FIT_PARAMS, FIT_METRICS, fit_calibration, median_abs
from sim.perf.profile import Calibration, build_profile
from sim.perf.replay import ENGINE_LIMITS, BenchRun, compare, read_validation_set, simulate_run

VALIDATION_SET = Path(__file__).resolve().parents[2] / "tests/data/serving/measurements.csv"
TABLE_METRICS = ("output_throughput", "median_tpot_ms", "median_ttft_ms", "median_e2el_ms")
# Constants fitted per engine; the sets differ where an engine's runs cannot inform a constant
# (TensorRT-LLM's published runs are all throughput-only, so nothing constrains TTFT terms).
FIT_PARAMS = {
    "trtllm": ("gemm_bw_eff", "gemm_compute_eff", "attn_bw_eff"),
    "vllm-v1": ("gemm_bw_eff", "step_overhead_s", "per_seq_overhead_s"),
    "sglang": (*DEFAULT_FIT_PARAMS, "frontend_s_per_request"),
    "vllm-0.6": (*DEFAULT_FIT_PARAMS, "frontend_s_per_request"),
}
# Replays during a fit are capped at this many requests per run (the reported held-out errors
# use the full MAX_SIMULATED_REQUESTS), and large engines' fit sets are thinned to every
# FIT_STRIDE-th run: the shared 2-core machine allows a few hundred replays per fit.
FIT_MAX_REQUESTS = 1500
FIT_STRIDE = {"trtllm": 2}


def build_for(run: BenchRun, cal: Calibration):
    s = run.setup
    return build_profile(
        s["model"], s["gpu"], tp=s["tp"], precision=s["precision"], calibration=cal
    )


def limits_for(run: BenchRun):
    return ENGINE_LIMITS[run.setup["profile"]]


def step_factor(errors: dict) -> list[float]:
    """Factors by which the simulated step time would have to be multiplied to match: a
    throughput overestimated by e means steps (1 + e) too fast; a TPOT error e, 1 / (1 + e)."""
    out = []
    if "output_throughput" in errors:
        out.append(1.0 + errors["output_throughput"])
    if "median_tpot_ms" in errors:
        out.append(1.0 / (1.0 + errors["median_tpot_ms"]))
    return out


def evaluate(runs: list[BenchRun]) -> list[tuple[BenchRun, dict, dict]]:
    """(run, simulated metrics, errors) with each run's own shipped profile."""
    out = []
    for run in runs:
        cal = load_engine_profile(run.setup["profile"])
        sim = simulate_run(run, build_for(run, cal), limits_for(run))
        out.append((run, sim, compare(run.measured, sim)))
    return out


def refit(runs: list[BenchRun], max_evaluations: int = 30, only: tuple[str, ...] = ()) -> None:
    """Fit each profile on its `fit` runs and rewrite its TOML with fitted_on and the error
    band of its `holdout` runs."""
    light = {r.label: r for r in read_validation_set(VALIDATION_SET, FIT_MAX_REQUESTS)}
    by_profile: dict[str, list[BenchRun]] = {}
    for run in runs:
        by_profile.setdefault(run.setup["profile"], []).append(run)
    for name, mine in sorted(by_profile.items()):
        if only and name not in only:
            continue
        stride = FIT_STRIDE.get(name, 1)
        train = [light[r.label] for r in mine if r.setup["split"] == "fit"][::stride]
        held = [r for r in mine if r.setup["split"] == "holdout"]
        doc = profile_document(name)
        base = load_engine_profile(name)
        params = FIT_PARAMS.get(name, DEFAULT_FIT_PARAMS)
        result = fit_calibration(
            train,
            base,
            build_for,
            limits_for,
            params,
            max_evaluations,
            FIT_METRICS,
        )
        held_err = [
            compare(r.measured, simulate_run(r, build_for(r, result.calibration), limits_for(r)))
            for r in held
        ]
        factors = [f for e in held_err for f in step_factor(e)]
        meta = dict(doc["profile"])
        meta.update(
            fitted_on=[r.label for r in train],
            held_out=[r.label for r in held],
            fitted_params=list(params),
            fit_rms_log_error=round(math.sqrt(result.train_cost), 4),
            held_out_median_abs_error=[
                f"{k}={v:.3f}" for k, v in median_abs(held_err).items() if k in TABLE_METRICS
            ],
            error_band=[round(min(factors), 3), round(max(factors), 3)] if factors else [1.0, 1.0],
            status="fitted by python -m sim.perf.validate --fit",
        )
        fitted = replace(
            result.calibration,
            **{p: float(f"{getattr(result.calibration, p):.4g}") for p in params},
        )
        (PROFILE_DIR / f"{name}.toml").write_text(profile_toml(meta, fitted))
        print(f"{name}: fitted {params} on {len(train)} runs, {result.evaluations} evaluations")
        reload_profiles()


def cross_gpu(train_gpu: str = "h100-sxm", test_gpu: str = "h200", max_evaluations: int = 12):
    """A harder held-out check on the TensorRT-LLM rows: fit on `train_gpu`'s fit rows only and
    report the error on every `test_gpu` row (a GPU the fit never saw). Prints per run."""
    light = read_validation_set(VALIDATION_SET, FIT_MAX_REQUESTS)
    train = [r for r in light if r.setup["profile"] == "trtllm" and r.setup["gpu"] == train_gpu]
    train = [r for r in train if r.setup["split"] == "fit"]
    base = load_engine_profile("trtllm")
    params = FIT_PARAMS["trtllm"]
    fitted = fit_calibration(train, base, build_for, limits_for, params, max_evaluations)
    errs = []
    for run in read_validation_set(VALIDATION_SET):
        if run.setup["profile"] != "trtllm" or run.setup["gpu"] != test_gpu:
            continue
        sim = simulate_run(run, build_for(run, fitted.calibration), limits_for(run))
        errs.append(compare(run.measured, sim))
        print(f"| {run.label} | {errs[-1]['output_throughput']:+.1%} |")
    thr = sorted(abs(e["output_throughput"]) for e in errs)
    print(
        f"fit on {len(train)} {train_gpu} runs; {len(errs)} {test_gpu} runs: median abs "
        f"{median_abs(errs)['output_throughput']:.1%}, worst {thr[-1]:.1%}, "
        f"{sum(t > 0.3 for t in thr)} over 30%"
    )


def table(rows, split: str = "holdout") -> str:
    head = "| run | engine | setup | " + " | ".join(TABLE_METRICS) + " |"
    lines = [head, "|" + "---|" * (3 + len(TABLE_METRICS))]
    for run, _sim, err in rows:
        if run.setup["split"] != split:
            continue
        s = run.setup
        cells = [f"{err[m]:+.1%}" if m in err else "" for m in TABLE_METRICS]
        setup = f"{s['model']} {s['gpu']} TP{s['tp']} {s['precision']}"
        lines.append(f"| {run.label} | {s['profile']} | {setup} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows, split: str = "holdout") -> str:
    errs = [e for r, _s, e in rows if r.setup["split"] == split]
    med = median_abs(errs)
    thr = [abs(e["output_throughput"]) for e in errs if "output_throughput" in e]
    parts = [f"{k} {med[k]:.1%}" for k in TABLE_METRICS if k in med]
    worst = (
        f"; worst throughput {max(thr):.1%}, {sum(t > 0.3 for t in thr)} runs over 30%"
        if thr
        else ""
    )
    return f"{split}: {len(errs)} runs; median abs error " + ", ".join(parts) + worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit and rewrite the profiles")
    parser.add_argument("--evals", type=int, default=30, help="most replays of the set per fit")
    parser.add_argument("--only", nargs="*", default=(), help="refit only these profiles")
    parser.add_argument(
        "--cross-gpu", action="store_true", help="TensorRT-LLM: fit on H100, test on H200"
    )
    args = parser.parse_args(argv)
    if args.cross_gpu:
        cross_gpu()
        return
    runs = read_validation_set(VALIDATION_SET)
    if args.fit:
        refit(runs, args.evals, tuple(args.only))
    rows = evaluate(runs)
    print(table(rows))
    print()
    print(summary(rows, "holdout"))
    print(summary(rows, "fit"))
    by_engine: dict[str, list] = {}
    for row in rows:
        if row[0].setup["split"] == "holdout":
            by_engine.setdefault(row[0].setup["profile"], []).append(row)
    for name, mine in sorted(by_engine.items()):
        print(f"  {name}: " + summary(mine))


if __name__ == "__main__":
    main()
