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

import itertools
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine import billing
from sim.engine.accounting import timeseries_frame, window_edges
from sim.engine.api import ApiFleet, Attempts, TierLedger, TokenBuckets
from sim.engine.api_cache import WarmPrefixes
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
    run_env,
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
        """How the cost splits over the requests without a price of their own (a hybrid's
        overflow requests pay their API price: its part is left out)."""
        shared = self.window_cost - self.parts.get("api_overflow", 0.0)
        return self.aggregate.cost_rates(self.edges, shared)

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


# engine_path = "auto" streams a replication above this many requests (sim.run.replications):
# the exact path keeps about 200 bytes per request and fleet (1M requests x 3 fleets peaked at
# 569 MB, bench/RESULTS.md), so 2M requests x 3 fleets is about 1.2 GB; the streaming path's
# memory is flat in the number of requests.
EXACT_BYTES_PER_REQUEST = 200  # per request and fleet on the exact path (measured, above)
AUTO_STREAMING_REQUESTS = 2_000_000


def cannot_stream(cfg) -> str | None:
    """Why fleet `cfg` cannot run on the streaming path ("field: reason"), or None if it can."""
    name = cfg.name
    if isinstance(cfg, ApiFleetConfig):
        return None
    if getattr(cfg, "decode", None) is not None:
        return f"prefill: disaggregated fleet {name!r} cannot stream yet (keep requests in memory)"
    return None


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

    if not isinstance(cfg, ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig):
        raise ValueError(f"kind: unknown fleet config {type(cfg).__name__}")
    reason = cannot_stream(cfg)
    if reason is not None:
        raise ValueError(reason)
    if isinstance(cfg, ApiFleetConfig):
        return _stream_api(cfg, chunks, rng, window_s, horizon_s, agg, flush)
    profile = fleet_profile(cfg, profile_factory)

    env = simpy.Environment()
    table = SlotTable(flush, None, capacity)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is not None:  # the workload's prefix block size, for per-replica caches
        table.hash_block_tokens = int(first.meta.get("hash_block_tokens", table.hash_block_tokens))
        chunks = itertools.chain([first], chunks)
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
        run_env(env, stop)
        # The cost horizon, as on the exact path: fixed costs run over the span, not the drain.
        span_s = max(seen["last_arrival_s"], 1e-9)
        end = max(env.now, span_s)
    else:
        run_env(env, horizon_s)
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

    api_part = None
    if getattr(fleet, "overflow", None) is not None:
        # The overflow API settles the handed-over requests after the run, as on the exact path.
        api_part, own = _overflow_stream(
            fleet, window_s, horizon_s, agg, flush, table.hash_block_tokens
        )
        if horizon_s is None:  # the run lasts until the API's last request settles
            end = max(end, api_part.meta["end_s"])
            work_end = max(work_end, api_part.meta["end_s"])
    edges = window_edges(end, window_s)
    parts = fleet_cost_parts(fleet, cfg, edges)
    if api_part is not None:
        parts["api_overflow"] = _fit_windows(api_part.window_cost, len(edges) - 1)
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
    prefix = fleet.prefix_cache_meta()
    if prefix is not None:
        meta["prefix_cache"] = prefix
    ok = int(agg.status_counts[OK])
    out_tok, prompt_tok = float(agg.ok_output_tokens), float(agg.ok_prompt_tokens)
    throttled = np.zeros(len(edges) - 1, dtype=np.int64)
    if api_part is not None:  # the fleet's own requests only, as on the exact path
        meta["overflowed"] = len(fleet.handed_over)
        meta["event_counts"]["throttled"] = api_part.meta["event_counts"]["throttled"]
        throttled = _fit_windows(api_part.throttled, len(edges) - 1).astype(np.int64)
        ok, out_tok, prompt_tok = ok - own[0], out_tok - own[1], prompt_tok - own[2]
    meta["utilisation"] = utilisation(fleet, edges, out_tok, mean_context(prompt_tok, out_tok, ok))
    return StreamResult(
        cfg.name,
        cfg.kind,
        agg,
        edges,
        window_cost,
        parts,
        fleet.replicas_in(edges),
        fleet.gpu_util(edges, billed),
        throttled,
        meta,
        fleet.events.per_window(edges),
    )


def _overflow_stream(fleet, window_s, horizon_s, agg, flush, block_tokens):
    """A hybrid fleet's overflow: its API settles the requests handed over during the run, in
    pieces, with the fleet's own ApiFleet (its random streams), as `_stream_api`; their rows
    keep their request ids and say served_by = 1. Returns the API's StreamResult and the
    overflow's (completed requests, output tokens, prompt tokens)."""
    rows = fleet.handed_over
    ids = fleet.handed_ids  # provider caching: each row's prefix block ids
    request = np.array([r[0] for r in rows], dtype=np.int64)
    own = [0, 0, 0]

    def pieces():
        for lo in range(0, len(rows), 1 << 20):
            part = rows[lo : lo + (1 << 20)]
            meta = {}
            if ids is not None:
                blocks = ids[lo : lo + (1 << 20)]
                offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
                np.cumsum([len(b) for b in blocks], out=offsets[1:])
                values = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
                meta = {"hash_ids": (offsets, values), "hash_block_tokens": block_tokens}
            yield Workload(
                np.array([r[1] for r in part], dtype=np.float64),
                np.array([r[2] for r in part], dtype=np.int64),
                np.array([r[3] for r in part], dtype=np.int64),
                np.array([r[4] for r in part], dtype=np.int64),
                meta=meta,
            )

    def relabel(b: RequestBatch) -> None:
        b.request = request[b.request]  # piece positions -> the workload's request ids
        b.served_by = np.ones(len(b), dtype=np.int8)
        done = b.status == OK
        own[0] += int(done.sum())
        own[1] += int(b.output_tokens[done].sum())
        own[2] += int(b.prompt_tokens[done].sum())
        flush(b)

    api = fleet.overflow
    result = _stream_api(
        api.cfg, pieces(), None, window_s, horizon_s, agg, relabel, api=api, row_prices=True
    )
    if not rows:
        result.meta["end_s"] = 0.0
    return result, own


def _stream_api(
    cfg, chunks, rng, window_s, horizon_s, agg, flush, api=None, row_prices=False
) -> StreamResult:
    """An API fleet piece by piece. With rate limits the token buckets carry over from one
    piece to the next (`TokenBuckets`), so every request is sent, retried and throttled exactly
    as on the exact path; a piece is flushed once none of its requests waits to retry. With
    volume tiers a completion is priced once every earlier completion is known (no later
    submission or pending retry can finish before it), in completion order, the month's running
    total carried over (`TierLedger`). Latencies are sampled piece by piece (the exact path draws
    them for the whole workload at once: the same distribution, other draws).
    `cannot_stream` was checked. api: an ApiFleet to use (a hybrid fleet's overflow, whose
    random streams it keeps), else one is made with `rng`. row_prices: every row carries its own
    price (a hybrid's overflow rows, whose price the fleet's cost shares leave out); where volume
    tiers decide prices later than a piece settles, its rows are held until the end of the
    stream and flushed then, in order, with their prices."""
    ready = False
    buckets = None
    ledger = TierLedger(cfg.volume_tiers) if cfg.volume_tiers else None
    warm = None  # prompt_cache = "provider": the provider's cache (WarmPrefixes), carried over
    unread = _Waiting()  # provider caching: requests whose cached tokens are not decided yet
    base = 0
    state = {"end": 0.0, "cost_by_window": np.zeros(0), "throttled": np.zeros(0, np.int64)}
    cache_tokens = [0, 0]  # cached input and cache-write tokens of the served requests so far
    # Pieces fed to the token buckets and not flushed yet: (table, kept, Attempts)
    open_pieces: list[tuple[RequestTable, np.ndarray, Attempts]] = []
    unpriced = _Waiting()  # volume tiers: completions not priced yet
    held: list[RequestBatch] = []  # row_prices: rows waiting for their tiered prices
    price_at: dict[int, float] = {}  # row_prices: a position's price, once decided

    def book(ends: np.ndarray, cost: np.ndarray) -> None:
        paid = (cost != 0) & ~np.isnan(ends)
        state["cost_by_window"] = _add_by_window(
            state["cost_by_window"], ends[paid], window_s, cost[paid]
        )

    def finish(table: RequestTable, keep: np.ndarray, out: Attempts | None) -> None:
        """Settle piece `table` (requests `keep` submitted), price it (or leave its completions
        to `price_due`) and flush it."""
        api.table = table
        if out is None:  # no rate limit: every request is sent once, at its arrival
            out = Attempts(0, len(keep))
            out.send, out.attempts[:] = table.arrival_s[keep].copy(), 1
        defer = ledger is not None or warm is not None
        api.settle(keep, out.send, out.attempts, out.failed, defer_price=defer)
        cache_tokens[0] += api.cached_input_tokens
        cache_tokens[1] += api.cache_write_tokens
        if horizon_s is not None:
            _cut_at_horizon(table, api.idx, float(horizon_s))
        status, ends = table.status[api.idx], table.end_s[api.idx]
        pos = out_base[id(table)] + keep
        if warm is not None:
            send, first, prompt, output, fin, ok = api.cache_inputs
            keys = np.empty(len(keep), dtype=object)
            keys[:] = [api.prefix_keys()] * len(keep)
            unread.add(
                send=send, pos=pos, keys=keys, local=keep, first=first, prompt=prompt,
                output=output, finish=fin, ok=ok, status=status, end=ends,
            )  # fmt: skip
        own_cost = None  # each request's price, when known now (not deferred)
        if warm is None and ledger is None:
            paid = np.where(status == OK, api.cost_usd, 0.0)
            book(ends, paid)
            own_cost = np.zeros(table.n)
            own_cost[keep] = paid
        elif warm is None:
            queue_pricing(pos, api.price_parts, status, ends)
        if len(ends) and np.isfinite(ends).any():
            state["end"] = max(state["end"], float(np.nanmax(ends)))
        (held.append if row_prices and own_cost is None else flush)(
            RequestBatch(
                request=out_base[id(table)] + np.arange(table.n, dtype=np.int64),
                arrival_s=table.arrival_s,
                start_s=table.start_s,
                first_token_s=table.first_token_s,
                finish_s=table.finish_s,
                end_s=table.end_s,
                prompt_tokens=table.prompt_tokens,
                output_tokens=table.output_tokens,
                status=table.status,
                attempts=table.attempts,
                cost_usd=own_cost,
            )
        )

    def queue_pricing(pos, parts, status, ends) -> None:
        """Completed requests (before any horizon cut, as on the exact path) wait for
        `price_due`; the others pay nothing."""
        uncached, cached, output, fin, ok, written = (np.asarray(x) for x in parts)
        ok = ok.astype(bool)
        unpriced.add(
            pos=pos[ok], uncached=uncached[ok], cached=cached[ok], output=output[ok],
            finish=fin[ok], ok=ok[ok], written=written[ok], status=status[ok], end=ends[ok],
        )  # fmt: skip

    def read_due(frontier: float) -> None:
        """Provider caching: decide the cached and cache-write tokens of the requests sent
        before `frontier` (no later request is sent before them), in send order (ties in
        submission order), through the provider's cache; then price them."""
        if warm is None:
            return
        r = unread.take("send", frontier)
        if r is not None:
            keys, local, ok = r["keys"], r["local"], r["ok"]
            cached, written = warm.read(
                lambda k: keys[k].lookup(local[k]),
                np.arange(len(ok)), r["send"], r["first"], r["prompt"], ok,
            )  # fmt: skip
            cache_tokens[0] += int(cached[ok].sum())
            cache_tokens[1] += int(written[ok].sum())
            parts = (r["prompt"] - cached - written, cached, r["output"], r["finish"], ok, written)
            if ledger is None:
                paid = np.where(r["status"] == OK, api._token_cost(*parts), 0.0)
                book(r["end"], paid)
                if row_prices:
                    price_at.update(zip(r["pos"].tolist(), paid.tolist(), strict=True))
            else:
                queue_pricing(r["pos"], parts, r["status"], r["end"])
        if frontier < math.inf:
            warm.forget_expired(frontier)

    def settle_due(frontier: float) -> None:
        read_due(frontier)
        price_due(frontier)

    def price_due(frontier: float) -> None:
        """Price the completions before `frontier` (no later one can come before them), in
        completion order (ties in submission order), through the tier ledger."""
        if ledger is None:
            return
        r = unpriced.take("finish", frontier)
        if r is None:
            return
        parts = [r[k] for k in ("uncached", "cached", "output", "finish", "ok", "written")]
        factor = ledger.factors(
            r["finish"], r["uncached"] + r["cached"] + r["written"] + r["output"]
        )
        cost = api._token_cost(*parts, factor=factor)
        paid = np.where(r["status"] == OK, cost, 0.0)
        book(r["end"], paid)
        if row_prices:
            price_at.update(zip(r["pos"].tolist(), paid.tolist(), strict=True))

    def feed(piece, until: float) -> None:
        """Send the piece's requests through the buckets, with the retries due before `until`;
        then flush every open piece none of whose requests waits to retry, and price what no
        later completion can precede."""
        table, keep, out = piece
        t_sub = table.arrival_s[keep]
        tokens = table.prompt_tokens[keep] + table.output_tokens[keep]
        open_pieces.append(piece)
        buckets.feed(t_sub.tolist(), tokens.tolist(), [o for _, _, o in open_pieces], until)
        times = np.asarray(buckets.throttles, dtype=np.float64)
        buckets.throttles.clear()
        if horizon_s is not None:
            times = times[times <= horizon_s]
        state["throttled"] = _add_by_window(state["throttled"], times, window_s, None)
        waiting = sorted(buckets.pending_positions())
        still = []
        for table, keep, out in open_pieces:
            lo = bisect_left(waiting, out.first)
            if lo < len(waiting) and waiting[lo] < out.first + len(keep):
                still.append((table, keep, out))
            else:
                finish(table, keep, out)
        open_pieces[:] = still
        settle_due(min(until, buckets.next_retry_s()))

    out_base: dict[int, int] = {}
    pending = None  # the previous piece, fed once the next one's first submission is known
    for w in chunks:
        table = RequestTable(w)
        if not ready:
            ready = True
            api = api or ApiFleet(cfg, table, rng)
            api.table = table
            if api.limited:
                buckets = TokenBuckets(cfg, api._jitter_rng)
            if api.cache_mode == "provider":
                warm = WarmPrefixes(api.cache_rules, api.prefix_keys().unit_tokens)
        out_base[id(table)] = base
        keep = (
            np.arange(table.n)
            if horizon_s is None
            else np.flatnonzero(table.arrival_s <= horizon_s)
        )
        first_submission = float(table.arrival_s[keep[0]]) if len(keep) else math.inf
        if buckets is None:
            settle_due(first_submission)
            finish(table, keep, None)
        else:
            if pending is not None:
                feed(pending, first_submission)
            pending = (table, keep, Attempts(base, len(keep)))
        base += table.n
    if buckets is not None:
        if pending is not None:
            feed(pending, math.inf)  # every retry comes due: every piece settles
        api.retries = buckets.retried
    settle_due(math.inf)
    for b in held:  # every price is decided now; positions never priced paid nothing
        b.cost_usd = np.array([price_at.get(p, 0.0) for p in b.request.tolist()])
        flush(b)
    end = float(horizon_s) if horizon_s is not None else state["end"]
    edges = window_edges(end, window_s)
    n_w = len(edges) - 1
    window_cost = _fit_windows(state["cost_by_window"], n_w)
    throttled = _fit_windows(state["throttled"], n_w).astype(np.int64)
    meta = {"end_s": end}
    if api is not None:
        api.throttle_s = np.zeros(0)
        meta["event_counts"] = api_event_counts(api, end)
        meta["event_counts"]["throttled"] = int(throttled.sum())
        meta.update(
            price_usd_per_mtok_input=api.price_in,
            price_usd_per_mtok_output=api.price_out,
            price_usd_per_mtok_cached_input=api.price_cached,
        )
        api.cached_input_tokens, api.cache_write_tokens = cache_tokens
        meta.update(api.cache_meta())
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
        throttled,
        meta,
    )


class _Waiting:
    """Requests of an API stream waiting until no later request can precede them: named columns
    per piece. `take(key, frontier)` hands out those whose `key` is before `frontier`, in
    (`key`, position) order, and keeps the rest."""

    def __init__(self):
        self._pieces: list[dict[str, np.ndarray]] = []

    def add(self, **columns) -> None:
        self._pieces.append(columns)

    def take(self, key: str, frontier: float) -> dict[str, np.ndarray] | None:
        if not self._pieces:
            return None
        names = self._pieces[0]
        cols = {n: np.concatenate([p[n] for p in self._pieces]) for n in names}
        due = np.flatnonzero(cols[key] < frontier)
        if not len(due):
            return None
        order = due[np.lexsort((cols["pos"][due], cols[key][due]))]
        rest = np.setdiff1d(np.arange(len(cols[key])), due, assume_unique=True)
        self._pieces = [{n: c[rest] for n, c in cols.items()}]
        return {n: c[order] for n, c in cols.items()}


def _add_by_window(acc: np.ndarray, t: np.ndarray, window_s: float, weights) -> np.ndarray:
    """`acc` (per window [k w, (k+1) w)) plus the `weights` (or counts) of times `t`."""
    if not len(t):
        return acc
    k = (t // window_s).astype(np.int64)
    top = int(k.max()) + 1
    if top > len(acc):
        acc = np.concatenate([acc, np.zeros(top - len(acc), dtype=acc.dtype)])
    add = np.bincount(k, weights=weights, minlength=top)
    acc[:top] += add.astype(acc.dtype)
    return acc


def _fit_windows(acc: np.ndarray, n_w: int) -> np.ndarray:
    """Per-window sums over [0, end]'s `n_w` windows; anything later goes to the last one."""
    out = np.zeros(n_w, dtype=np.float64)
    m = min(n_w, len(acc))
    out[:m] = acc[:m]
    out[-1] += acc[n_w:].sum()
    return out
