"""Replay a serving benchmark through the engine and compare: vLLM `benchmark_serving.py` /
`vllm bench serve` result files (and rows of the shipped validation set) become `BenchRun`s, each
is simulated on one replica with the same lengths and arrival process, and the serving metrics of
both are set side by side. `sim calibrate` is a thin layer over this module."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError

# Metrics compared, named as in vLLM's result files. Throughputs per second; latencies in ms.
METRICS = (
    "output_throughput",
    "request_throughput",
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "p99_itl_ms",
    "median_e2el_ms",
    "p99_e2el_ms",
)
# vLLM's sharegpt sampler keeps prompts of 4..1024 tokens and prompt + output <= 2048.
SHAREGPT_MAX_PROMPT, SHAREGPT_MAX_TOTAL = 1024, 2048


@dataclass(frozen=True)
class BenchRun:
    """One measured benchmark run: the requests (lengths), how they arrived, what was measured.

    request_rate: requests/s of a Poisson process; math.inf = all sent at t = 0.
    max_concurrency: the client kept at most this many requests in flight (None = no cap).
    measured: metric name (METRICS) -> value; metrics the source did not report are absent.
    """

    label: str
    input_lens: np.ndarray
    output_lens: np.ndarray
    request_rate: float = math.inf
    max_concurrency: int | None = None
    measured: dict = field(default_factory=dict)
    setup: dict = field(default_factory=dict)  # model, gpu, tp, precision, engine, ... if known
    seed: int = 0


def _percentile_ms(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q) * 1e3) if len(values) else math.nan


def metrics_from_requests(
    input_lens, output_lens, ttfts_s, itls_s, duration_s: float
) -> dict[str, float]:
    """The METRICS as vLLM computes them from per-request data: TPOT = (latency - TTFT) /
    (output - 1) over requests with more than one output token; ITL over all token gaps."""
    out = np.asarray(output_lens, dtype=float)
    ttft = np.asarray(ttfts_s, dtype=float)
    gaps = [np.asarray(g, dtype=float) for g in itls_s]
    e2e = ttft + np.array([g.sum() for g in gaps])
    multi = out > 1
    tpot = (e2e[multi] - ttft[multi]) / (out[multi] - 1)
    all_gaps = np.concatenate(gaps) if gaps and any(len(g) for g in gaps) else np.zeros(0)
    return {
        "output_throughput": float(out.sum() / duration_s),
        "request_throughput": len(out) / duration_s,
        "median_ttft_ms": _percentile_ms(ttft, 50),
        "p99_ttft_ms": _percentile_ms(ttft, 99),
        "median_tpot_ms": _percentile_ms(tpot, 50),
        "p99_tpot_ms": _percentile_ms(tpot, 99),
        "median_itl_ms": _percentile_ms(all_gaps, 50),
        "p99_itl_ms": _percentile_ms(all_gaps, 99),
        "median_e2el_ms": _percentile_ms(e2e, 50),
        "p99_e2el_ms": _percentile_ms(e2e, 99),
    }


def _rate(raw, origin: str) -> float:
    if raw is None or str(raw).strip().lower() in ("inf", "infinity", ""):
        return math.inf
    try:
        rate = float(raw)
    except ValueError:
        raise InputError(origin, "request_rate", f"not a number: {raw!r}") from None
    if not rate > 0:
        raise InputError(origin, "request_rate", f"must be positive or 'inf', got {raw!r}")
    return rate


def read_bench_result(path: str | Path) -> BenchRun:
    """A vLLM `benchmark_serving.py --save-result` / `vllm bench serve --save-result` JSON file.

    Needs per-request `input_lens` and `output_lens`; the measured metrics are the file's own
    summary figures, recomputed from `ttfts` / `itls` where the summary lacks them. Failed
    requests (non-empty `errors`, or output 0 with no TTFT) are dropped.
    """
    origin = str(path)
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(origin, None, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(origin, None, f"not a JSON benchmark result: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(origin, None, "not a JSON object")
    for key in ("input_lens", "output_lens"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise InputError(origin, key, "missing: save the result with per-request details")
    inp, out = raw["input_lens"], raw["output_lens"]
    if len(inp) != len(out):
        raise InputError(origin, "output_lens", "length differs from input_lens")
    errors = raw.get("errors") or [""] * len(inp)
    keep = [i for i in range(len(inp)) if not errors[i] and inp[i] > 0]
    if not keep:
        raise InputError(origin, "errors", "no successful request")
    inp_a = np.array([int(inp[i]) for i in keep], dtype=np.int64)
    out_a = np.array([int(out[i]) for i in keep], dtype=np.int64)
    measured = {k: float(raw[k]) for k in METRICS if isinstance(raw.get(k), int | float)}
    ttfts, itls = raw.get("ttfts"), raw.get("itls")
    duration = raw.get("duration")
    if isinstance(ttfts, list) and isinstance(itls, list) and duration:
        per_req = metrics_from_requests(
            inp_a,
            out_a,
            [ttfts[i] for i in keep],
            [itls[i] or [] for i in keep],
            float(duration),
        )
        for key, value in per_req.items():
            measured.setdefault(key, value)
    if not measured:
        raise InputError(origin, "ttfts", "no measured metric in the file")
    cap = raw.get("max_concurrency")
    return BenchRun(
        label=Path(path).stem,
        input_lens=inp_a,
        output_lens=np.maximum(out_a, 1),
        request_rate=_rate(raw.get("request_rate"), origin),
        max_concurrency=int(cap) if cap else None,
        measured=measured,
        setup={"model_id": raw.get("model_id"), "backend": raw.get("backend")},
    )


def _sharegpt_lengths(n: int, mean_in: float, mean_out: float, rng) -> tuple:
    """Stand-in for ShareGPT's lengths (the dataset is not shipped): lognormal prompts and
    outputs (sigma 1.0 and 0.9) with vLLM's sampler limits, scaled to the stated means."""
    inp = rng.lognormal(0.0, 1.0, 4 * n)
    out = rng.lognormal(0.0, 0.9, 4 * n)
    inp = np.maximum(4, np.round(inp / inp.mean() * mean_in)).astype(np.int64)
    out = np.maximum(4, np.round(out / out.mean() * mean_out)).astype(np.int64)
    ok = (inp <= SHAREGPT_MAX_PROMPT) & (inp + out <= SHAREGPT_MAX_TOTAL)
    return inp[ok][:n], out[ok][:n]


# ShareGPT means with a Llama-3 tokenizer (docs/calibration.md): 231 prompt tokens (a public
# vLLM benchmark log: 230,969 input tokens over 1,000 prompts) and 194 output tokens (the SGLang
# README's own offline rows: 4,281.51 tok/s / 22.03 req/s).
SHAREGPT_MEAN_IN, SHAREGPT_MEAN_OUT = 231.0, 194.3
# Published fixed-length runs queue thousands of requests; past this many the throughput is at
# its steady state, so the replay simulates at most this many (the rest only lengthen the run).
MAX_SIMULATED_REQUESTS = 4000

_CSV_METRICS = {
    "output_throughput_tok_s": "output_throughput",
    "request_throughput_req_s": "request_throughput",
    "median_ttft_ms": "median_ttft_ms",
    "median_tpot_ms": "median_tpot_ms",
    "median_itl_ms": "median_itl_ms",
    "median_e2e_ms": "median_e2el_ms",
}


def read_validation_set(
    path: str | Path, max_requests: int = MAX_SIMULATED_REQUESTS
) -> list[BenchRun]:
    """Rows of the shipped validation set (tests/data/serving/measurements.csv) as BenchRuns.
    Fixed-length rows get exact lengths; ShareGPT rows a seeded stand-in (see _sharegpt_lengths)."""
    runs = []
    with Path(path).open(newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            seed = 1000 + k
            rng = np.random.default_rng(seed)
            n = min(int(row["num_prompts"]), max_requests)
            if row["dataset"] == "sharegpt":
                inp, out = _sharegpt_lengths(n, SHAREGPT_MEAN_IN, SHAREGPT_MEAN_OUT, rng)
            else:
                inp = np.full(n, int(row["input_len"]), dtype=np.int64)
                out = np.full(n, int(row["output_len"]), dtype=np.int64)
            measured = {name: float(row[col]) for col, name in _CSV_METRICS.items() if row.get(col)}
            setup = {
                key: row[key]
                for key in ("model", "gpu", "precision", "engine", "engine_version", "profile")
            }
            setup.update(tp=int(row["tp"]), split=row["split"], source_id=row["source_id"])
            cap = row.get("max_concurrency")
            runs.append(
                BenchRun(
                    label=row["run_id"],
                    input_lens=inp,
                    output_lens=out,
                    request_rate=_rate(row["request_rate"], str(path)),
                    max_concurrency=int(cap) if cap else None,
                    measured=measured,
                    setup=setup,
                    seed=seed,
                )
            )
    return runs


@dataclass(frozen=True)
class EngineLimits:
    """The engine's batching limits for a replay (vLLM: --max-num-seqs, --max-num-batched-tokens)."""

    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    # Mix prompt chunks into decode steps (vLLM V1, TensorRT-LLM in-flight batching), or run
    # prefill-only steps that pause the decodes (vLLM <= 0.6 below 32k context, SGLang 0.3).
    chunked_prefill: bool = True


# Batching limits each engine runs with by default in the published setups.
ENGINE_LIMITS = {
    "vllm-0.5": EngineLimits(256, 8192, chunked_prefill=False),
    "vllm-0.6": EngineLimits(256, 8192, chunked_prefill=False),
    "vllm-v1": EngineLimits(256, 8192),
    "sglang": EngineLimits(1024, 16384, chunked_prefill=False),
    "trtllm": EngineLimits(2048, 8192),
}


def simulate_run(run: BenchRun, profile, limits: EngineLimits = EngineLimits()) -> dict:
    """Replay `run` on one replica of `profile` (a sim.perf.ServingProfile) and return METRICS.

    Arrivals: all at t = 0 for an infinite rate, else a Poisson process at the rate (seeded by
    the run). A concurrency cap C is modelled as an engine that admits at most C sequences;
    TTFT and E2E then count from admission, as the capped client starts its clock on sending.
    """
    from sim.engine.config import EngineConfig, SelfHostedFleetConfig
    from sim.engine.simulate import simulate_fleet
    from sim.workload import Workload

    n = len(run.input_lens)
    rng = np.random.default_rng(run.seed)
    if math.isinf(run.request_rate):
        arrivals = np.zeros(n)
    else:
        arrivals = np.cumsum(rng.exponential(1.0 / run.request_rate, n))
        arrivals -= arrivals[0]
    seqs = limits.max_num_seqs
    if getattr(profile, "kv_admission", "evict") == "no_evict":
        per_request = float(np.mean(run.input_lens + run.output_lens))
        seqs = max(1, min(seqs, int(profile.kv_capacity_tokens // per_request)))
    if run.max_concurrency:
        seqs = min(seqs, run.max_concurrency)
    engine = EngineConfig(
        max_batch_seqs=seqs,
        max_batched_tokens=limits.max_batched_tokens,
        chunked_prefill=limits.chunked_prefill,
    )
    cfg = SelfHostedFleetConfig(
        name="replay",
        gpu=profile.gpu.name,
        servers=1,
        gpus_per_server=profile.tp,
        tp=profile.tp,
        gpu_price_usd=1.0,
        engine=engine,
    )
    workload = Workload(arrivals, run.input_lens.copy(), run.output_lens.copy(), name=run.label)
    res = simulate_fleet(
        cfg,
        workload,
        profile_factory=lambda *_a, **_k: profile,
        rng=np.random.default_rng(run.seed + 1),
    )
    ok = np.isfinite(res.finish_s)
    if not ok.any():
        return dict.fromkeys(METRICS, math.nan)
    clock = res.start_s if run.max_concurrency else res.arrival_s
    ttft = (res.first_token_s - clock)[ok]
    e2e = (res.finish_s - clock)[ok]
    out = res.output_tokens[ok].astype(float)
    duration = float(np.nanmax(res.finish_s) - np.nanmin(res.arrival_s))
    multi = out > 1
    tpot = (e2e[multi] - ttft[multi]) / (out[multi] - 1)
    # Request-level terms: front end, and the wait for the running schedule (in decode steps of
    # the request's own pace; requests with one output token wait the median pace).
    wait_steps = getattr(profile, "sched_wait_steps", 0.0)
    extra = np.full(len(ttft), getattr(profile, "frontend_s_per_request", 0.0))
    if wait_steps and len(tpot):
        pace = np.full(len(ttft), float(np.median(tpot)))
        pace[multi] = tpot
        extra += wait_steps * pace
    ttft = ttft + extra
    e2e = e2e + extra
    # The engine gives each request's mean gap, not every gap: ITL percentiles weight each
    # request's TPOT by its number of gaps.
    itl = np.repeat(tpot, (out[multi] - 1).astype(np.int64))
    return {
        "output_throughput": float(out.sum() / duration),
        "request_throughput": float(ok.sum() / duration),
        "median_ttft_ms": _percentile_ms(ttft, 50),
        "p99_ttft_ms": _percentile_ms(ttft, 99),
        "median_tpot_ms": _percentile_ms(tpot, 50),
        "p99_tpot_ms": _percentile_ms(tpot, 99),
        "median_itl_ms": _percentile_ms(itl, 50),
        "p99_itl_ms": _percentile_ms(itl, 99),
        "median_e2el_ms": _percentile_ms(e2e, 50),
        "p99_e2el_ms": _percentile_ms(e2e, 99),
    }


def compare(measured: dict, simulated: dict) -> dict:
    """Relative error simulated / measured - 1 for every metric both have."""
    return {
        k: simulated[k] / measured[k] - 1.0
        for k in METRICS
        if k in measured and measured[k] and math.isfinite(simulated.get(k, math.nan))
    }
