"""`simulate_fleet`: run one fleet against one workload and return its `FleetResult`."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import numpy as np
import simpy

from sim.engine import billing
from sim.engine.accounting import allocate_cost, build_timeseries, window_edges
from sim.engine.api import ApiFleet
from sim.engine.cloud import CloudFleet
from sim.engine.config import (
    DEFAULT_ENGINE_PROFILE,
    POOLS,
    ApiFleetConfig,
    CloudFleetConfig,
    SelfHostedFleetConfig,
    is_disaggregated,
    pool_config,
)
from sim.engine.disagg import DisaggFleet
from sim.engine.events import (
    api_event_counts,
    event_counts,
    events_per_window,
    no_window_events,
    utilisation,
)
from sim.engine.requests import RequestTable
from sim.engine.result import OK, FleetResult
from sim.engine.self_hosted import SelfHostedFleet
from sim.workload import Workload

# With no horizon, a run stops this long after the last arrival even if queues never drain
# (an overloaded fleet); whatever is still in flight is reported UNFINISHED.
DRAIN_LIMIT_S = 6 * 3600.0

_profile_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _profile(
    factory: Callable,
    gpu: str,
    tp: int,
    precision: str | None,
    mem_util: float,
    engine_profile: str = DEFAULT_ENGINE_PROFILE,
):
    """Build perf profiles once per (factory, gpu, tp, precision, mem_util, engine profile): they
    are pure. A non-default engine profile is passed as `engine_profile=`."""
    key = (gpu, tp, precision, mem_util, engine_profile)

    def build():
        if engine_profile == DEFAULT_ENGINE_PROFILE:
            return factory(*key[:4])
        return factory(*key[:4], engine_profile=engine_profile)

    try:
        cache = _profile_cache.setdefault(factory, {})
    except TypeError:  # not weak-referenceable: no cache
        return build()
    if key not in cache:
        cache[key] = build()
    return cache[key]


def fleet_profile(cfg: CloudFleetConfig | SelfHostedFleetConfig, profile_factory: Callable | None):
    """The serving profile of a GPU fleet's replicas (None for the exponential service)."""
    if profile_factory is not None:
        engine = cfg.engine
        profile = _profile(
            profile_factory, cfg.gpu, cfg.tp, cfg.precision, engine.mem_util, engine.profile
        )
        if engine.speculative is not None:
            from sim.perf.speculative import speculative_profile

            profile = speculative_profile(profile, engine.speculative, engine.profile)
        return profile
    if cfg.engine.service != "exponential":
        raise ValueError("profile_factory: needed for GPU fleets with service = 'physics'")
    return None


def run_env(env: simpy.Environment, until) -> None:
    """`env.run(until=until)` with the cyclic garbage collector's youngest generation collected
    every 100,000 allocations instead of 700: a run allocates millions of short-lived events and
    tuples that die by reference count, and the default threshold spends about 4% of a run
    walking them. The thresholds are restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, *before[1:])
    try:
        env.run(until=until)
    finally:
        gc.set_threshold(*before)


def simulate_fleet(
    cfg: ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig,
    workload: Workload,
    *,
    profile_factory: Callable | None,
    rng: np.random.Generator,
    window_s: float = 60.0,
    horizon_s: float | None = None,
    progress: Callable[[float], None] | None = None,
    jump: bool = True,
) -> FleetResult:
    """Simulate `workload` on the fleet `cfg` (prices already resolved) and return every request's
    times, status and cost share plus a time series per `window_s`.

    horizon_s: end of the simulation; None runs until every request is settled, at most
    `DRAIN_LIMIT_S` after the last arrival. The cost horizon is the span (horizon_s, else the
    workload's duration, i.e. its last arrival): fixed costs (capex, colocation, commitments)
    count over it only; variable costs are kept whole, and the share of them spent draining after
    the span is `meta["overrun_variable_usd"]`, with `meta["overrun_s"]` the drain's length.
    jump: advance decode-only batches in jumps (False = one SimPy event per step, the reference).
    """
    if not window_s > 0:
        raise ValueError(f"window_s: must be positive, got {window_s}")
    if horizon_s is not None and not horizon_s > 0:
        raise ValueError(f"horizon_s: must be positive, got {horizon_s}")
    table = RequestTable(workload)
    if isinstance(cfg, ApiFleetConfig):
        return _simulate_api(
            cfg, table, rng, window_s, horizon_s, progress, _span(workload, horizon_s)
        )

    env = simpy.Environment()
    if is_disaggregated(cfg):
        profiles = tuple(fleet_profile(pool_config(cfg, w), profile_factory) for w in POOLS)
        fleet = DisaggFleet(
            env, table, cfg, profiles=profiles, rng=rng, window_s=window_s, jump=jump
        )
    elif isinstance(cfg, CloudFleetConfig | SelfHostedFleetConfig):
        profile = fleet_profile(cfg, profile_factory)
        fleet_cls = CloudFleet if isinstance(cfg, CloudFleetConfig) else SelfHostedFleet
        fleet = fleet_cls(env, table, cfg, profile=profile, rng=rng, window_s=window_s, jump=jump)
    else:
        raise ValueError(f"kind: unknown fleet config {type(cfg).__name__}")

    fleet.start_arrivals()
    if table.n == 0 and not fleet.done.triggered:
        fleet.done.succeed()
    expected_end = horizon_s if horizon_s is not None else max(workload.duration_s, 1.0)
    if progress is not None:
        env.process(_report_progress(env, progress, expected_end))
    span_s = _span(workload, horizon_s)
    if horizon_s is None:
        limit = env.timeout(workload.duration_s + DRAIN_LIMIT_S)
        fleet.stop_at = env.now + (workload.duration_s + DRAIN_LIMIT_S)  # the limit's time
        run_env(env, env.any_of([fleet.done, limit]))
        # A fleet that settles early still exists until the span ends (its fixed costs run on).
        end = max(env.now, span_s)
    else:
        fleet.stop_at = horizon_s
        run_env(env, horizon_s)
        end = float(horizon_s)
    work_end = env.now
    _drop_future_first_tokens(table, end)
    if isinstance(fleet, DisaggFleet):
        fleet.settle(end)
    elif not fleet.exp:
        for rep in fleet.replicas:
            rep.settle(end)

    overflow = getattr(fleet, "overflow", None)
    api_idx = np.zeros(0, dtype=np.int64)
    api_cost = np.zeros(0)
    throttle_s = np.zeros(0)
    if overflow is not None:
        overflow.run()
        api_idx, api_cost, throttle_s = overflow.idx, overflow.cost_usd, overflow.throttle_s
        if horizon_s is None and len(api_idx):
            end = max(end, float(np.nanmax(table.end_s[api_idx])))
            work_end = max(work_end, float(np.nanmax(table.end_s[api_idx])))
        else:
            _cut_at_horizon(table, api_idx, end)
            api_cost = np.where(table.status[api_idx] == OK, api_cost, 0.0)

    edges = window_edges(end, window_s)
    parts = fleet_cost_parts(fleet, cfg, edges)
    if overflow is not None:
        parts["api_overflow"] = _cost_by_finish(edges, table.end_s[api_idx], api_cost)
    parts, overrun = billing.apply_cost_horizon(parts, edges, span_s)
    gpu_cost = np.sum([v for k, v in parts.items() if k != "api_overflow"], axis=0)
    window_cost = np.sum(list(parts.values()), axis=0)
    billed = fleet.billed_gpu_s(edges)
    util = fleet.gpu_util(edges, billed)
    replicas = fleet.replicas_in(edges)

    own_status = table.status.copy()
    own_status[api_idx] = -1  # the API's requests pay their own exact price
    share = allocate_cost(
        edges, gpu_cost, table.end_s, own_status, table.prompt_tokens + table.output_tokens
    )
    share[api_idx] += api_cost
    if progress is not None:
        progress(1.0)
    meta = {
        **_meta(fleet, end),
        **_overrun(span_s, work_end, overrun),
        **(fleet.pool_meta(edges, parts) if isinstance(fleet, DisaggFleet) else {}),
    }
    meta["event_counts"] = event_counts(fleet)
    own_ok = (table.status == OK) & (table.served_by == 0)
    out_tokens = float(table.output_tokens[own_ok].sum())
    meta["utilisation"] = utilisation(
        fleet,
        edges,
        out_tokens,
        mean_context(float(table.prompt_tokens[own_ok].sum()), out_tokens, int(own_ok.sum())),
    )
    return _result(
        cfg,
        table,
        edges,
        window_cost,
        share,
        replicas,
        util,
        throttle_s,
        parts,
        served_by=table.served_by if overflow is not None else None,
        meta=meta,
        events=events_per_window(fleet, edges),
    )


def _overrun(span_s: float, work_end_s: float, overrun: np.ndarray) -> dict:
    return {
        "span_s": span_s,
        "overrun_s": max(0.0, work_end_s - span_s),
        "overrun_variable_usd": float(overrun.sum()),
    }


def _span(workload: Workload, horizon_s: float | None) -> float:
    """The cost horizon: the scenario's horizon, else the workload's duration."""
    return float(horizon_s) if horizon_s is not None else max(float(workload.duration_s), 1e-9)


def fleet_cost_parts(fleet, cfg, edges) -> dict:
    """A GPU fleet's cost per window by part; a commitment term bills its committed replicas.
    A disaggregated fleet's parts are its pools', named `prefill.<part>` and `decode.<part>`."""
    if isinstance(fleet, DisaggFleet):
        return fleet.cost_parts(edges, fleet_cost_parts)
    if isinstance(cfg, CloudFleetConfig) and billing.is_commitment(cfg.term):
        return _commitment_parts(fleet, cfg, edges)
    return fleet.window_costs(edges)


def _commitment_parts(fleet: CloudFleet, cfg: CloudFleetConfig, edges) -> dict:
    """A commitment term: `min_replicas` replicas paid over the span, the rest on demand."""
    start, stop, _ = fleet._intervals(edges)
    burst = cfg.fallback_price_usd_per_hour
    try:
        return billing.commitment_parts(
            edges,
            committed_replicas=cfg.min_replicas,
            usd_per_replica_hour=cfg.price_usd_per_hour * fleet.instances,
            start_s=start,
            stop_s=stop,
            burst_usd_per_replica_hour=None if burst is None else burst * fleet.instances,
        )
    except ValueError as exc:
        raise ValueError(f"{cfg.name}: {exc}") from None


def _simulate_api(cfg, table, rng, window_s, horizon_s, progress, span_s) -> FleetResult:
    fleet = ApiFleet(cfg, table, rng)
    keep = np.arange(table.n) if horizon_s is None else np.flatnonzero(table.arrival_s <= horizon_s)
    fleet._idx = keep.tolist()
    fleet._t = table.arrival_s[keep].tolist()
    fleet.run()
    if horizon_s is None:
        ends = table.end_s[fleet.idx]
        end = float(np.nanmax(ends)) if len(ends) else 0.0
    else:
        end = float(horizon_s)
        _cut_at_horizon(table, fleet.idx, end)
    cost = np.zeros(table.n)
    cost[fleet.idx] = np.where(table.status[fleet.idx] == OK, fleet.cost_usd, 0.0)
    work_end = end
    end = max(end, span_s)
    edges = window_edges(end, window_s)
    window_cost = _cost_by_finish(edges, table.end_s, cost)
    parts, overrun = billing.apply_cost_horizon({"tokens": window_cost}, edges, span_s)
    n_w = len(edges) - 1
    if progress is not None:
        progress(1.0)
    meta = {
        "price_usd_per_mtok_input": fleet.price_in,
        "price_usd_per_mtok_output": fleet.price_out,
        "price_usd_per_mtok_cached_input": fleet.price_cached,
        "end_s": end,
        **_overrun(span_s, work_end, overrun),
        **fleet.cache_meta(),
        "event_counts": api_event_counts(fleet, end),
    }
    return _result(
        cfg,
        table,
        edges,
        window_cost,
        cost,
        np.zeros(n_w),
        np.zeros(n_w),
        fleet.throttle_s[fleet.throttle_s <= end],
        parts,
        served_by=None,
        meta=meta,
        events=no_window_events(n_w),
    )


def _drop_future_first_tokens(table: RequestTable, end: float) -> None:
    """A prefill step merged into the jump after it records its first tokens when it starts
    (replica.py); those of a step still running when the run stops never happened."""
    ft = table.first_token_s
    with np.errstate(invalid="ignore"):
        ft[ft > end] = np.nan


def _cut_at_horizon(table: RequestTable, idx: np.ndarray, end: float) -> None:
    """API requests that settle after the horizon are UNFINISHED; they cost nothing within it."""
    from sim.engine.result import UNFINISHED

    late = idx[table.end_s[idx] > end]
    table.status[late] = UNFINISHED
    table.finish_s[late] = np.nan
    table.end_s[late] = np.nan
    ft = table.first_token_s[late]
    table.first_token_s[late] = np.where(ft > end, np.nan, ft)


def _cost_by_finish(edges: np.ndarray, end_s: np.ndarray, cost: np.ndarray) -> np.ndarray:
    n_w = len(edges) - 1
    mask = (cost != 0) & ~np.isnan(end_s)
    if not mask.any():
        return np.zeros(n_w)
    k = np.clip(np.searchsorted(edges, end_s[mask], side="right") - 1, 0, n_w - 1)
    return np.bincount(k, weights=cost[mask], minlength=n_w)[:n_w]


def _report_progress(env: simpy.Environment, progress: Callable, expected_end: float):
    tick = max(expected_end / 100, 1.0)
    while True:
        yield env.timeout(tick)
        progress(min(env.now / expected_end, 0.999))


def _meta(fleet, end: float) -> dict:
    meta = {"end_s": end, "events": [list(e) for e in fleet.log[:10000]]}
    if fleet.kv_cap is not None:
        meta["kv_capacity_tokens"] = fleet.kv_cap
    meta["replicas_launched"] = len(fleet.replicas)
    meta["preemptions"] = int(fleet.table.attempts.sum()) if fleet.kind != "api" else 0
    prefix = fleet.prefix_cache_meta()
    if prefix is not None:
        meta["prefix_cache"] = prefix
    if isinstance(fleet, CloudFleet):
        meta["instances_per_replica"] = fleet.instances
        meta["price_usd_per_hour"] = fleet.cfg.price_usd_per_hour
        meta["cold_start_load_s"] = fleet.load_s
    if isinstance(fleet, SelfHostedFleet):
        meta["capex_usd"] = fleet.capex_usd
        meta["amortised_usd_per_s"] = fleet.amortised_usd_per_s
        meta["replicas"] = fleet.n_replicas
        if fleet.overflow is not None:
            meta["overflowed"] = len(fleet.overflow.idx)
    return meta


def mean_context(prompt_tokens: float, output_tokens: float, requests: int) -> float:
    """The mean KV context of a decoding sequence, prompt plus half the output, from the token
    sums of `requests` completed requests (NaN without any)."""
    if requests <= 0:
        return float("nan")
    return (prompt_tokens + output_tokens / 2) / requests


def _result(
    cfg,
    table,
    edges,
    window_cost,
    share,
    replicas,
    util,
    throttle_s,
    parts,
    served_by,
    meta,
    events,
) -> FleetResult:
    ts = build_timeseries(
        edges,
        arrival_s=table.arrival_s,
        start_s=table.start_s,
        first_token_s=table.first_token_s,
        end_s=table.end_s,
        status=table.status,
        cost_usd=window_cost,
        replicas=replicas,
        busy_fraction=util,
        throttle_s=throttle_s,
        events=events,
        output_tokens=table.output_tokens,
    )
    return FleetResult(
        name=cfg.name,
        kind=cfg.kind,
        arrival_s=table.arrival_s,
        start_s=table.start_s,
        first_token_s=table.first_token_s,
        finish_s=table.finish_s,
        prompt_tokens=table.prompt_tokens,
        output_tokens=table.output_tokens,
        status=table.status,
        attempts=table.attempts,
        cost_usd=share,
        timeseries=ts,
        total_cost_usd=float(window_cost.sum()),
        cost_breakdown_usd={k: float(v.sum()) for k, v in parts.items()},
        served_by=served_by,
        meta=meta,
        end_s=table.end_s,
    )
