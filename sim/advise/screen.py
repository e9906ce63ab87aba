"""The analytical screen: per-replica capacity at the SLO from the step-time model, a cost estimate
and a lower bound on cost for the traffic, per candidate, in numpy. It prunes thousands of
candidates to a shortlist worth simulating; it never decides the winner alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Fraction of a replica's saturated throughput the sizing aims for: queueing at the p99 TTFT
# target needs headroom (an M/D/c-like fleet at 70% busy rarely queues for long).
TARGET_UTIL = 0.7
# Fraction of the TPOT target one decode step may take at the sizing batch: the rest absorbs
# prefill chunks sharing the step and the tail of the step-time distribution.
TPOT_HEADROOM = 0.5
RATE_BIN_S = 300.0  # traffic is sized per 5-minute bin


@dataclass(frozen=True)
class WorkloadStats:
    """What the screen needs of the traffic."""

    requests: int
    span_s: float
    prompt_mean: float
    prompt_p99: float
    output_mean: float
    input_tokens: float
    cached_tokens: float
    output_tokens: float
    bin_s: float
    rate_per_s: np.ndarray  # arrivals per second in each bin

    @property
    def peak_rate(self) -> float:
        return float(self.rate_per_s.max()) if len(self.rate_per_s) else 0.0

    @property
    def mean_rate(self) -> float:
        return self.requests / self.span_s if self.span_s > 0 else 0.0

    @classmethod
    def from_workload(cls, w, bin_s: float = RATE_BIN_S) -> WorkloadStats:
        arrival = np.asarray(w.arrival_s, dtype=np.float64)
        prompt = np.asarray(w.prompt_tokens, dtype=np.float64)
        output = np.asarray(w.output_tokens, dtype=np.float64)
        cached = (
            np.minimum(np.asarray(w.cached_prompt_tokens, dtype=np.float64), prompt)
            if getattr(w, "cached_prompt_tokens", None) is not None
            else np.zeros_like(prompt)
        )
        span = max(float(arrival[-1]) if len(arrival) else 0.0, 1.0)
        n_bins = max(1, math.ceil(span / bin_s))
        counts = np.bincount(
            np.minimum((arrival // bin_s).astype(np.int64), n_bins - 1), minlength=n_bins
        )
        widths = np.full(n_bins, bin_s)
        widths[-1] = span - bin_s * (n_bins - 1) or bin_s
        return cls(
            requests=len(arrival),
            span_s=span,
            prompt_mean=float(prompt.mean()) if len(prompt) else 0.0,
            prompt_p99=float(np.percentile(prompt, 99)) if len(prompt) else 0.0,
            output_mean=float(output.mean()) if len(output) else 0.0,
            input_tokens=float(prompt.sum()),
            cached_tokens=float(cached.sum()),
            output_tokens=float(output.sum()),
            bin_s=bin_s,
            rate_per_s=counts / widths,
        )

    def bin_widths(self) -> np.ndarray:
        widths = np.full(len(self.rate_per_s), self.bin_s)
        widths[-1] = self.span_s - self.bin_s * (len(widths) - 1)
        return widths


@dataclass(frozen=True)
class Capacity:
    """One replica's serving capacity for this traffic under the SLO, from the step model."""

    feasible: bool
    why_not: str | None
    rps: float  # requests/s per replica at TARGET_UTIL of its saturated throughput
    batch: int  # decode batch used for sizing
    tpot_s: float  # estimated decode step at that batch
    ttft_s: float  # prefill of a p99 prompt alone
    min_busy_s_per_request: float  # GPU-time per request at the largest batch memory allows
    prefill_frac: float  # share of a request's GPU time spent in prefill, at the sizing batch


def replica_capacity(profile, stats: WorkloadStats, slo_targets: dict) -> Capacity:
    """Capacity of one replica (a ServingProfile) for `stats` within the SLO's TPOT and TTFT."""
    prompt, out = max(stats.prompt_mean, 1.0), max(stats.output_mean, 1.0)
    ctx = int(prompt + out / 2)
    per_seq = prompt + out
    b_kv = int(profile.kv_capacity_tokens // per_seq)
    b_max = max(1, min(256, b_kv))
    tpot_limit = min((v for k, v in slo_targets.items() if k.startswith("tpot_")), default=math.inf)
    ttft_limit = min((v for k, v in slo_targets.items() if k.startswith("ttft_")), default=math.inf)
    batches = np.arange(1, b_max + 1)
    steps = np.array([profile.decode_step_s(int(b), ctx) for b in batches])
    prefill_s = profile.prefill_time_s(int(prompt))
    ttft_s = profile.prefill_time_s(int(max(stats.prompt_p99, 1)))
    min_busy = out * steps[-1] / b_max + prefill_s
    ok = steps <= tpot_limit * TPOT_HEADROOM
    why = None
    if b_kv < 1:
        why = "one average request does not fit in the KV cache"
    elif not ok.any():
        why = f"one sequence decodes in {steps[0]:.3f} s/token, above the TPOT target"
    elif ttft_s > ttft_limit:
        why = f"prefill of a p99 prompt takes {ttft_s:.2f} s, above the TTFT target"
    if why is not None:
        return Capacity(False, why, 0.0, 0, float(steps[0]), ttft_s, min_busy, 0.0)
    b = int(batches[ok][-1])
    step = float(steps[ok][-1])
    per_request_s = out * step / b + prefill_s
    return Capacity(
        feasible=True,
        why_not=None,
        rps=TARGET_UTIL / per_request_s,
        batch=b,
        tpot_s=step,
        ttft_s=ttft_s,
        min_busy_s_per_request=min_busy,
        prefill_frac=prefill_s / per_request_s,
    )


def replicas_per_bin(stats: WorkloadStats, rps_per_replica: float) -> np.ndarray:
    """Replicas the traffic of each bin needs at `rps_per_replica` (at least one)."""
    if rps_per_replica <= 0:
        return np.full(len(stats.rate_per_s), np.inf)
    return np.maximum(np.ceil(stats.rate_per_s / rps_per_replica - 1e-9), 1.0)


@dataclass(frozen=True)
class Estimate:
    """Screen figures of one candidate, USD over the scenario's span."""

    cost_usd: float  # expected cost, for ranking the shortlist
    lower_bound_usd: float  # no simulation of this candidate can cost less (under the step model)
    feasible: bool
    why_not: str | None = None
    peak_gpus: int = 0
