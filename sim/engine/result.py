"""What one fleet's simulation returns: per-request arrays and a per-window time series."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

# status codes in FleetResult.status
OK, FAILED, DROPPED, UNFINISHED = 0, 1, 2, 3
STATUS_NAMES = {OK: "ok", FAILED: "failed", DROPPED: "dropped", UNFINISHED: "unfinished"}

# Columns of FleetResult.timeseries, one row per window [window_start_s, window_end_s).
TIMESERIES_COLUMNS = (
    "window_start_s",
    "window_end_s",
    "arrivals",
    "completions",
    "throttled",  # API throttling events (429s) in the window, retries included
    "failed",  # requests that ended failed or dropped in the window
    # events in the window (sim/engine/events.py; 0 where a fleet kind cannot have them)
    "scale_up",  # autoscaler decisions to add replicas
    "scale_down",  # autoscaler decisions to remove replicas
    "cold_starts",  # replicas launched cold (provisioning + weight loading)
    "preemptions",  # running sequences evicted because the KV cache was full
    "spot_kills",  # spot replicas reclaimed by the provider (at the warning)
    "queue_len",  # mean number of requests waiting (not yet running) over the window
    "replicas",  # mean replicas serving (billed, warm or starting) over the window
    "busy_fraction",  # busy GPU-seconds (an engine step running) over billed GPU-seconds
    "cost_usd",  # cost accrued in the window
    "cumulative_cost_usd",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p90_s",
    "tpot_p99_s",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",  # latency percentiles of requests that finished in the window (NaN if none)
)


@dataclass
class FleetResult:
    """All times are seconds from the workload start; NaN where a request never got there."""

    name: str
    kind: str
    arrival_s: np.ndarray
    start_s: np.ndarray  # first admitted to a batch (API: request sent successfully)
    first_token_s: np.ndarray
    finish_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    status: np.ndarray  # int8, see OK/FAILED/DROPPED/UNFINISHED
    attempts: np.ndarray  # int16, API attempts incl. retries; preemption restarts for GPU fleets
    cost_usd: np.ndarray  # float64 per-request share of the fleet's cost (sums to total_cost_usd)
    timeseries: pl.DataFrame  # TIMESERIES_COLUMNS
    total_cost_usd: float
    cost_breakdown_usd: dict[str, float] = field(default_factory=dict)  # e.g. capex, power, tokens
    served_by: np.ndarray | None = None  # int8 for hybrids: 0 = own fleet, 1 = overflow API
    meta: dict = field(default_factory=dict)  # e.g. resolved prices, kv capacity, replicas
    end_s: np.ndarray | None = None  # when each request reached its final status (NaN: unfinished)

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s
