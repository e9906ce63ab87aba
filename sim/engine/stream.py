"""Per-fleet aggregates built as a run goes, so that nothing needs every request in memory.

`FleetAggregate.add(batch)` takes settled requests a batch at a time (numpy arrays); it keeps, per
time window: arrivals, completions, failures, prompt and output tokens of completed requests,
the time requests spent waiting (for the mean queue length), and quantile sketches of TTFT, TPOT
and E2E (sim/engine/sketch.py, within 1%), plus run totals: counts by status, SLO attainment
counted exactly for the targets given up front. Memory is bounded by windows x sketch bins in use,
not by requests. `figures()` gives what `sim.summary.replication_figures` gives from the full arrays,
`timeseries()` the per-window table of `FleetResult.timeseries`, `request_cost()` each request's
share of the cost (for sampled per-request rows).

Requests are keyed to windows as in `accounting.build_timeseries`: arrivals by arrival time,
completions, failures and latencies by the time the request settled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.engine.accounting import WindowSums
from sim.engine.result import DROPPED, FAILED, OK, UNFINISHED
from sim.engine.sketch import WindowSketches, quantiles

METRICS = ("ttft", "tpot", "e2e")
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


@dataclass
class RequestBatch:
    """Settled (or, at the end of a run, unfinished) requests of one fleet: aligned numpy arrays.

    Times are seconds from the workload start, NaN where the request never got there."""

    request: np.ndarray  # int64 index in the workload
    arrival_s: np.ndarray
    start_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    end_s: np.ndarray  # when it reached its final status; NaN if unfinished
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    status: np.ndarray  # int8: OK, FAILED, DROPPED, UNFINISHED
    attempts: np.ndarray  # int16
    served_by: np.ndarray | None = None  # int8 for hybrids
    # Each request's own price where it is known when it settles (API requests, NaN for the
    # others); None: none is (a GPU fleet's cost is split over its requests at the end).
    cost_usd: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.request)

    def take(self, idx: np.ndarray) -> RequestBatch:
        return RequestBatch(
            **{k: (None if v is None else v[idx]) for k, v in self.__dict__.items()}
        )

    def latencies(self) -> dict[str, np.ndarray]:
        out = self.output_tokens.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (self.finish_s - self.first_token_s) / (out - 1), np.nan)
        return {
            "ttft": self.first_token_s - self.arrival_s,
            "tpot": tpot,
            "e2e": self.finish_s - self.arrival_s,
        }


@dataclass(frozen=True)
class CostRates:
    """How a fleet's cost splits over its requests (`FleetAggregate.cost_rates`): a request that
    completed by `end_s` pays tokens * (rate[its window] + leftover); with no completed request
    at all, every request pays `even_usd`."""

    window_s: float
    end_s: float
    rate: np.ndarray
    leftover: float
    even_usd: float = 0.0

    def request_cost(self, b: RequestBatch) -> np.ndarray:
        if self.even_usd:
            return np.full(len(b), self.even_usd)
        done = (b.status == OK) & (b.end_s <= self.end_s)
        cost = np.zeros(len(b))
        if done.any():
            w = np.minimum((b.end_s[done] // self.window_s).astype(np.int64), len(self.rate) - 1)
            tok = (b.prompt_tokens[done] + b.output_tokens[done]).astype(np.float64)
            cost[done] = tok * (self.rate[w] + self.leftover)
        return cost


@dataclass
class FleetAggregate:
    """Streaming per-window aggregates of one fleet in one replication (see the module doc)."""

    window_s: float
    slo_targets_s: dict[str, float] = field(default_factory=dict)  # e.g. {"ttft_p99": 2.0}

    def __post_init__(self):
        if not self.window_s > 0:
            raise ValueError(f"window_s: must be positive, got {self.window_s}")
        self._arrivals = np.zeros(0, dtype=np.int64)
        self._completions = np.zeros(0, dtype=np.int64)
        self._failed = np.zeros(0, dtype=np.int64)
        self._ok_tokens = np.zeros(0, dtype=np.float64)  # prompt + output of completed requests
        self._waiting = WindowSums(self.window_s)  # request-seconds spent waiting for admission
        self.sketches = {m: WindowSketches() for m in METRICS}
        self.status_counts = np.zeros(4, dtype=np.int64)
        self.ok_output_tokens = 0
        self.ok_prompt_tokens = 0
        self.within = {key: 0 for key in self.slo_targets_s}
        self.meets_all = 0
        self.end_s = 0.0  # the latest settle time seen
        self._open_waits: list[np.ndarray] = []  # arrivals of requests still waiting at the end

    # -- filling ------------------------------------------------------------------------------
    def _grow(self, n_windows: int) -> None:
        if n_windows > len(self._arrivals):
            extra = max(n_windows, 2 * len(self._arrivals)) - len(self._arrivals)
            self._arrivals = np.concatenate([self._arrivals, np.zeros(extra, np.int64)])
            self._completions = np.concatenate([self._completions, np.zeros(extra, np.int64)])
            self._failed = np.concatenate([self._failed, np.zeros(extra, np.int64)])
            self._ok_tokens = np.concatenate([self._ok_tokens, np.zeros(extra)])

    def _window(self, t: np.ndarray) -> np.ndarray:
        return np.maximum((t // self.window_s).astype(np.int64), 0)

    def _count(self, into: np.ndarray, w: np.ndarray, weights=None) -> None:
        if len(w):
            into[: int(w.max()) + 1] += np.bincount(w, weights=weights).astype(into.dtype)

    def add(self, b: RequestBatch) -> None:
        """Fold a batch of requests in. Each request must be added once, when it has settled (or
        at the end of the run, UNFINISHED)."""
        if len(b) == 0:
            return
        status = b.status
        settled = status != UNFINISHED
        ends = b.end_s[settled]
        if len(ends):
            self.end_s = max(self.end_s, float(np.nanmax(ends)))
        w_arr = self._window(b.arrival_s)
        ok = status == OK
        bad = (status == FAILED) | (status == DROPPED)
        w_ok = self._window(b.end_s[ok])
        w_bad = self._window(b.end_s[bad])
        top = max(
            int(w_arr.max()) + 1,
            int(w_ok.max()) + 1 if len(w_ok) else 0,
            int(w_bad.max()) + 1 if len(w_bad) else 0,
        )
        self._grow(top)
        self._count(self._arrivals, w_arr)
        self._count(self._completions, w_ok)
        self._count(self._failed, w_bad)
        # Tokens that share the window's cost: those of requests without a price of their own.
        shared = ok if b.cost_usd is None else ok & np.isnan(b.cost_usd)
        tokens = (b.prompt_tokens[shared] + b.output_tokens[shared]).astype(np.float64)
        self._count(self._ok_tokens, self._window(b.end_s[shared]), tokens)
        self.status_counts += np.bincount(status.astype(np.int64), minlength=4)[:4]
        self.ok_output_tokens += int(b.output_tokens[ok].sum())
        self.ok_prompt_tokens += int(b.prompt_tokens[ok].sum())
        # Waiting: arrival to admission (to the end of the run if never admitted: `finish`).
        started = ~np.isnan(b.start_s)
        if started.any():
            self._waiting.add_intervals(b.arrival_s[started], b.start_s[started])
        if (~started).any():
            wait_end = b.end_s[~started]
            closed = ~np.isnan(wait_end)
            self._waiting.add_intervals(b.arrival_s[~started][closed], wait_end[closed])
            self._open_waits.append(b.arrival_s[~started][~closed])
        lat = b.latencies()
        for metric, values in lat.items():
            good = ok & np.isfinite(values)
            self.sketches[metric].add(self._window(b.end_s[good]), np.maximum(values[good], 0.0))
        meets = ok.copy()
        for key, limit in self.slo_targets_s.items():
            with np.errstate(invalid="ignore"):
                inside = ok & (lat[key.split("_", 1)[0]] <= limit)
            self.within[key] += int(inside.sum())
            meets &= inside
        self.meets_all += int(meets.sum())

    def add_unarrived(self, arrival_s: np.ndarray, end_s: float) -> None:
        """Requests of the workload the run never reached (it stopped at `end_s`): unfinished;
        those arriving by `end_s` count as arrivals and wait until it, as in `build_timeseries`."""
        self.status_counts[UNFINISHED] += len(arrival_s)
        inside = arrival_s[arrival_s <= end_s]
        if len(inside):
            w = self._window(inside)
            self._grow(int(w.max()) + 1)
            self._count(self._arrivals, w)
            self._open_waits.append(inside)

    # -- results ------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.status_counts.sum())

    def _padded(self, values: np.ndarray, n_windows: int) -> np.ndarray:
        out = np.zeros(n_windows, dtype=values.dtype)
        m = min(n_windows, len(values))
        out[:m] = values[:m]
        if len(values) > n_windows and n_windows:  # late entries belong to the last window
            out[-1] += values[n_windows:].sum()
        return out

    def figures(self, total_cost_usd: float, span_s: float = math.nan) -> dict:
        """The per-replication figures `sim.summary.replication_figures` computes, from aggregates:
        percentiles from the sketches (within 1%), everything else exact."""
        n = self.n
        ok = int(self.status_counts[OK])
        fig: dict = {
            "total_cost_usd": float(total_cost_usd),
            "arrivals": n,
            "ok": ok,
            "failed": int(self.status_counts[FAILED]),
            "dropped": int(self.status_counts[DROPPED]),
            "unfinished": int(self.status_counts[UNFINISHED]),
            "success_rate": ok / n if n else math.nan,
        }
        mtok = self.ok_output_tokens / 1e6
        fig["usd_per_mtok_output"] = total_cost_usd / mtok if mtok > 0 else math.nan
        fig["usd_per_1k_requests"] = total_cost_usd / ok * 1000 if ok else math.nan
        all_mtok = mtok + self.ok_prompt_tokens / 1e6
        fig["usd_per_mtok"] = total_cost_usd / all_mtok if all_mtok > 0 else math.nan
        hours = span_s / 3600
        fig["usd_per_hour"] = total_cost_usd / hours if hours > 0 else math.nan
        fig["usd_per_month"] = fig["usd_per_hour"] * 730.0
        for metric in METRICS:
            total = self.sketches[metric].total()
            for qname, value in zip(QUANTILES, quantiles(total, QUANTILES.values()), strict=True):
                fig[f"{metric}_{qname}_s"] = value
        for key in self.slo_targets_s:
            fig[f"attainment:{key}"] = self.within[key] / n if n else math.nan
        fig["slo_attainment"] = self.meets_all / n if n else math.nan
        return fig

    def window_counts(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        n_w = len(edges) - 1
        return {
            "arrivals": self._padded(self._arrivals, n_w),
            "completions": self._padded(self._completions, n_w),
            "failed": self._padded(self._failed, n_w),
        }

    def queue_len(self, edges: np.ndarray) -> np.ndarray:
        """Mean requests waiting per window; requests never admitted nor settled wait to the end."""
        n_w = len(edges) - 1
        end = float(edges[-1])
        for arrivals in self._open_waits:
            self._waiting.add_intervals(arrivals, np.full(len(arrivals), end))
        self._open_waits = []
        area = self._waiting.array(n_w)
        widths = np.diff(edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(widths > 0, area / widths, 0.0)

    def window_latency_quantiles(self, metric: str, n_windows: int) -> np.ndarray:
        return self.sketches[metric].window_quantiles(n_windows, (0.5, 0.9, 0.99))

    def cost_rates(self, edges: np.ndarray, window_cost_usd: np.ndarray) -> CostRates:
        """How the fleet's cost splits over its requests, as `accounting.allocate_cost` splits it:
        per window, USD per token of the requests that completed in it, plus the USD per token
        that spreads the cost of windows without completions over every completed request."""
        n_w = len(edges) - 1
        tok = self._padded(self._ok_tokens, n_w)
        rate = np.zeros(n_w)
        covered = tok > 0
        rate[covered] = window_cost_usd[covered] / tok[covered]
        total_tok = tok.sum()
        total = float(window_cost_usd.sum())
        leftover = float(window_cost_usd[~covered].sum()) / total_tok if total_tok > 0 else 0.0
        even = total / self.n if total_tok == 0 and self.n and total else 0.0
        return CostRates(self.window_s, float(edges[-1]), rate, leftover, even)

    @property
    def nbytes(self) -> int:
        dense = self._arrivals.nbytes * 3 + self._ok_tokens.nbytes
        return dense + sum(s.nbytes for s in self.sketches.values())


def batch_from_result(fr) -> RequestBatch:
    """Every request of a `FleetResult` as one batch (e.g. to aggregate an exact small run)."""
    n = len(fr.status)
    end = fr.end_s if fr.end_s is not None else np.where(fr.status == OK, fr.finish_s, np.nan)
    return RequestBatch(
        request=np.arange(n, dtype=np.int64),
        arrival_s=fr.arrival_s,
        start_s=fr.start_s,
        first_token_s=fr.first_token_s,
        finish_s=fr.finish_s,
        end_s=end,
        prompt_tokens=fr.prompt_tokens,
        output_tokens=fr.output_tokens,
        status=fr.status,
        attempts=fr.attempts,
        served_by=fr.served_by,
    )
