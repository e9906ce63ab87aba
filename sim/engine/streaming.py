"""`simulate_fleet_streaming`: one fleet against a workload given in chunks, with memory bounded by
the requests in flight and the number of windows, not by the requests simulated.

Settled requests leave the engine in batches (`SlotTable`) into a `FleetAggregate` (counts, sums
and quantile sketches per window) and, if given, `on_batch` (e.g. a `RequestRowWriter`). The
result, a `StreamResult`, gives the same per-replication figures and time series as the exact
path (`simulate_fleet` + `sim.summary.replication_figures` + `FleetResult.timeseries`), with latency
percentiles from the sketches (within 1%) and everything else equal, for GPU fleets; an API
fleet fed in several chunks draws its latencies chunk by chunk (the same distributions, not the
same draws). Not supported yet: hybrid overflow, and API rate limits or volume tiers across
chunks (these need the whole submission sequence: use `simulate_fleet`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine import billing
from sim.engine.accounting import timeseries_frame, window_edges
from sim.engine.api import ApiFleet
from sim.engine.cloud import CloudFleet
from sim.engine.config import ApiFleetConfig, CloudFleetConfig, SelfHostedFleetConfig
from sim.engine.events import (
    api_event_counts,
    event_counts,
    no_window_events,
    utilisation,
)
from sim.engine.requests import RequestTable, SlotTable
from sim.engine.result import OK
from sim.engine.self_hosted import SelfHostedFleet
from sim.engine.simulate import (
    DRAIN_LIMIT_S,
    _cut_at_horizon,
    _drop_future_first_tokens,
    _overrun,
    fleet_cost_parts,
    fleet_profile,
    mean_context,
)
from sim.engine.stream import CostRates, FleetAggregate, RequestBatch
from sim.workload import Workload


@dataclass
class StreamResult:
    """What `simulate_fleet_streaming` returns: aggregates, not per-request arrays."""

    name: str
    kind: str
    aggregate: FleetAggregate
    edges: np.ndarray
    window_cost: np.ndarray
    parts: dict[str, np.ndarray]
    replicas: np.ndarray
    gpu_util: np.ndarray
    throttled: np.ndarray
    meta: dict = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)  # WINDOW_EVENTS per window
    rows: bytes | None = None  # this fleet's request rows as Parquet bytes (set by the run)

    @property
    def total_cost_usd(self) -> float:
        return float(self.window_cost.sum())

    @property
    def cost_breakdown_usd(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.parts.items()}

    def figures(self, span_s: float = float("nan")) -> dict:
        """The figures `sim.summary.replication_figures` gives for this fleet and replication."""
        return self.aggregate.figures(self.total_cost_usd, span_s)

    def cost_rates(self) -> CostRates:
        return self.aggregate.cost_rates(self.edges, self.window_cost)

    @property
    def timeseries(self):
        """One row per window, columns `TIMESERIES_COLUMNS` (as `FleetResult.timeseries`)."""
        edges = self.edges
        n_w = len(edges) - 1
        counts = self.aggregate.window_counts(edges)
        latency = {
            m: self.aggregate.window_latency_quantiles(m, n_w) for m in ("ttft", "tpot", "e2e")
        }
        counts["throttled"] = self.throttled
        counts.update(self.events or no_window_events(n_w))
        queue = self.aggregate.queue_len(edges)
        return timeseries_frame(
            edges, counts, queue, self.replicas, self.gpu_util, self.window_cost, latency
        )


def simulate_fleet_streaming(
    cfg: ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig,
    chunks: Iterable[Workload],
    *,
    profile_factory: Callable | None,
    rng: np.random.Generator,
    window_s: float = 60.0,
    horizon_s: float | None = None,
    slo_targets_s: dict[str, float] | None = None,
    on_batch: Callable[[RequestBatch], None] | None = None,
    capacity: int = 1 << 16,
) -> StreamResult:
    """Simulate the workload `chunks` (consecutive Workloads, absolute sorted times; a list of
    one Workload is fine) on fleet `cfg`. Arguments as `simulate_fleet`, plus:

    slo_targets_s: SLO targets (e.g. {"ttft_p99": 2.0}) whose attainment is counted exactly.
    on_batch: called with each batch of settled requests (and, at the end, the unfinished ones).
    capacity: initial request slots (the table doubles when more are in flight).
    """
    if not window_s > 0:
        raise ValueError(f"window_s: must be positive, got {window_s}")
    if horizon_s is not None and not horizon_s > 0:
        raise ValueError(f"horizon_s: must be positive, got {horizon_s}")
    agg = FleetAggregate(window_s, dict(slo_targets_s or {}))

    def flush(batch: RequestBatch) -> None:
        agg.add(batch)
        if on_batch is not None:
            on_batch(batch)

    if isinstance(cfg, ApiFleetConfig):
        return _stream_api(cfg, chunks, rng, window_s, horizon_s, agg, flush)
    if not isinstance(cfg, CloudFleetConfig | SelfHostedFleetConfig):
        raise ValueError(f"kind: unknown fleet config {type(cfg).__name__}")
    if isinstance(cfg, SelfHostedFleetConfig) and cfg.overflow is not None:
        raise ValueError(
            f"overflow: hybrid fleet {cfg.name!r} cannot stream yet (keep requests in memory)"
        )
    if getattr(cfg, "decode", None) is not None:
        raise ValueError(
            f"prefill: disaggregated fleet {cfg.name!r} cannot stream yet (keep requests in memory)"
        )
    profile = fleet_profile(cfg, profile_factory)

    env = simpy.Environment()
    table = SlotTable(flush, None, capacity)
    fleet_cls = CloudFleet if isinstance(cfg, CloudFleetConfig) else SelfHostedFleet
    fleet = fleet_cls(env, table, cfg, profile=profile, rng=rng, window_s=window_s)
    stop = env.event()

    def finish(_ev=None) -> None:
        if not stop.triggered:
            stop.succeed()

    seen = {"last_arrival_s": 0.0}

    def exhausted(last_arrival_s: float) -> None:
        seen["last_arrival_s"] = float(last_arrival_s)
        if horizon_s is None:
            delay = last_arrival_s + DRAIN_LIMIT_S - env.now
            fleet.stop_at = env.now + delay  # the run ends there at the latest
            env.timeout(delay).callbacks.append(finish)

    fleet.done.callbacks.append(finish)
    if horizon_s is not None:
        fleet.stop_at = horizon_s
    fleet.start_stream_arrivals(chunks, exhausted)
    if horizon_s is None:
        env.run(until=stop)
        # The cost horizon, as on the exact path: fixed costs run over the span, not the drain.
        span_s = max(seen["last_arrival_s"], 1e-9)
        end = max(env.now, span_s)
    else:
        env.run(until=horizon_s)
        end = float(horizon_s)
        span_s = end
    work_end = env.now

    _drop_future_first_tokens(table, end)
    for rep in fleet.replicas:
        if not fleet.exp:
            rep.settle(end)
    table.flush(table.finished)
    table.finished = []
    table.flush(table.in_flight())
    # Requests that never arrived (a horizon before the last arrival): unfinished.
    rest = fleet._arrival_t[fleet._arrival_next :] if fleet._arrival_t else []
    unarrived = [np.asarray(rest, dtype=np.float64)]
    unarrived += [np.asarray(w.arrival_s, dtype=np.float64) for w in fleet._chunks]
    agg.add_unarrived(np.concatenate(unarrived), end)

    edges = window_edges(end, window_s)
    parts = fleet_cost_parts(fleet, cfg, edges)
    parts, overrun = billing.apply_cost_horizon(parts, edges, span_s)
    window_cost = np.sum(list(parts.values()), axis=0)
    billed = fleet.billed_gpu_s(edges)
    meta = {"end_s": end, "events": [list(e) for e in fleet.log[:10000]]}
    meta.update(_overrun(span_s, work_end, overrun))
    if fleet.kv_cap is not None:
        meta["kv_capacity_tokens"] = fleet.kv_cap
    meta["replicas_launched"] = len(fleet.replicas)
    meta["preemptions"] = table.attempts_flushed
    meta["request_slots"] = table.capacity
    meta["event_counts"] = event_counts(fleet)
    ok = int(agg.status_counts[OK])
    meta["utilisation"] = utilisation(
        fleet,
        edges,
        float(agg.ok_output_tokens),
        mean_context(float(agg.ok_prompt_tokens), float(agg.ok_output_tokens), ok),
    )
    return StreamResult(
        cfg.name,
        cfg.kind,
        agg,
        edges,
        window_cost,
        parts,
        fleet.replicas_in(edges),
        fleet.gpu_util(edges, billed),
        np.zeros(len(edges) - 1, dtype=np.int64),
        meta,
        fleet.events.per_window(edges),
    )


def _stream_api(cfg, chunks, rng, window_s, horizon_s, agg, flush) -> StreamResult:
    limited = not cfg.batch and (cfg.rpm_limit is not None or cfg.tpm_limit is not None)
    if limited or cfg.volume_tiers:
        raise ValueError(
            f"rpm_limit: API fleet {cfg.name!r} with rate limits or volume tiers cannot stream "
            "yet (keep requests in memory)"
        )
    if cfg.prompt_cache == "provider":
        raise ValueError(f'prompt_cache: API fleet {cfg.name!r} with "provider" caching cannot stream yet (keep requests in memory)')  # fmt: skip
    api = None
    base = 0
    end = 0.0
    cost_by_window = np.zeros(0)
    for w in chunks:
        table = RequestTable(w)
        if api is None:
            api = ApiFleet(cfg, table, rng)
        api.table = table
        keep = (
            np.arange(table.n)
            if horizon_s is None
            else np.flatnonzero(table.arrival_s <= horizon_s)
        )
        api._idx = keep.tolist()
        api._t = table.arrival_s[keep].tolist()
        api.run()
        if horizon_s is not None:
            _cut_at_horizon(table, api.idx, float(horizon_s))
        cost = np.zeros(table.n)
        cost[api.idx] = np.where(table.status[api.idx] == OK, api.cost_usd, 0.0)
        ends = table.end_s[api.idx]
        if len(ends) and np.isfinite(ends).any():
            end = max(end, float(np.nanmax(ends)))
        paid = (cost != 0) & ~np.isnan(table.end_s)
        k = (table.end_s[paid] // window_s).astype(np.int64)
        if len(k):
            if k.max() >= len(cost_by_window):
                cost_by_window = np.concatenate(
                    [cost_by_window, np.zeros(int(k.max()) + 1 - len(cost_by_window))]
                )
            cost_by_window[: int(k.max()) + 1] += np.bincount(k, weights=cost[paid])
        flush(
            RequestBatch(
                request=base + np.arange(table.n, dtype=np.int64),
                arrival_s=table.arrival_s,
                start_s=table.start_s,
                first_token_s=table.first_token_s,
                finish_s=table.finish_s,
                end_s=table.end_s,
                prompt_tokens=table.prompt_tokens,
                output_tokens=table.output_tokens,
                status=table.status,
                attempts=table.attempts,
            )
        )
        base += table.n
    if horizon_s is not None:
        end = float(horizon_s)
    edges = window_edges(end, window_s)
    n_w = len(edges) - 1
    window_cost = np.zeros(n_w)
    m = min(n_w, len(cost_by_window))
    window_cost[:m] = cost_by_window[:m]
    window_cost[-1] += cost_by_window[n_w:].sum()
    meta = {"end_s": end}
    if api is not None:
        meta["event_counts"] = api_event_counts(api, end)
        meta.update(
            price_usd_per_mtok_input=api.price_in,
            price_usd_per_mtok_output=api.price_out,
            price_usd_per_mtok_cached_input=api.price_cached,
        )
    zeros = np.zeros(n_w)
    return StreamResult(
        cfg.name,
        cfg.kind,
        agg,
        edges,
        window_cost,
        {"tokens": window_cost},
        zeros,
        zeros,
        np.zeros(n_w, dtype=np.int64),
        meta,
    )
