"""What the cloud and self-hosted fleets share: the arrival process, the router, replica lifecycle
(warm, drain, kill, retire) and the bookkeeping of finished requests.

The shared interface of every fleet kind is small: `submit(i)` at a request's arrival,
`window_costs(edges)` for the cost accrued in each time window, and `replicas_in(edges)` /
`gpu_util(edges)` for the time series.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from sim.engine import native
from sim.engine.events import EventLog
from sim.engine.native import Due, due_of, schedule_at, schedule_from
from sim.engine.prefix import (
    CacheStats,
    PrefixCache,
    PrefixKeys,
    SlotPrefixKeys,
    prefill_saved_s,
    prefix_keys_of,
)
from sim.engine.requests import RequestTable, SlotTable
from sim.engine.result import DROPPED, OK

ROUTERS = ("round_robin", "least_outstanding", "jsq", "prefix_affinity")


class GpuFleet:
    """Replicas behind a router. Subclasses decide when replicas exist and what they cost."""

    kind = ""
    preplan_ok = True  # see `stop_at` below; False where anything else moves a replica's state
    hold_ok = True  # replicas may hold jump ends (`held` below); tests switch it off
    chain_ok = True  # replicas may chain their own events (`Replica._chained`); tests switch it off

    def __init__(
        self,
        env: simpy.Environment,
        table: RequestTable,
        *,
        name: str,
        engine,
        profile,
        gpus_per_replica: int,
        rng: np.random.Generator,
        window_s: float,
        jump: bool = True,
    ):
        self.env = env
        self.table = table
        self.name = name
        self.engine = engine
        self.profile = profile
        self.gpus_per_replica = gpus_per_replica
        self.rng = rng
        self.jump = jump
        self.replica_impl = native.impl()  # the compiled build of replica.py, or replica.py
        self._least_loaded = self.replica_impl.least_loaded
        # Choices and bounds of `engine` are the schema's (EngineConfig); the fit of the model is
        # known only once the profile is built.
        if engine.service == "exponential":
            self.exp = True
            self.kv_cap = None
            self._step_times = None
        elif engine.service == "physics":
            self.exp = False
            if not getattr(profile, "fits", True):
                raise ValueError(
                    f"{name}: the model does not fit on {gpus_per_replica} GPU(s) (tp)"
                )
            self.kv_cap = int(profile.kv_capacity_tokens)
            # every replica's step times (`st.step`, `st.decode`), from the build in use
            self._step_times = native.step_times(profile)
        self.busy_gpu_s = self.replica_impl.BusySums(window_s, gpus_per_replica)  # GPU-seconds
        self._router, self._max_queue = engine.router, engine.max_queue  # read once per arrival
        if isinstance(table, SlotTable):
            table.kv_cap = self.kv_cap  # each slot's flag is set when a request arrives
            self._never_fits = table.never_fits
        elif self.exp:
            self._never_fits = bytearray(table.n)
        else:
            self._never_fits = bytearray(
                (table.prompt_tokens + table.output_tokens > self.kv_cap).astype(np.uint8)
            )
        self.replicas: list = []
        self.routable: list = []
        self.pending: deque[int] = deque()  # arrived while no replica was warm
        self._pending_since: deque[float] = deque()  # when each pending request was queued
        self.central: deque[int] = deque()  # the single FIFO queue of exponential mode
        self.resume_gen: dict[int, int] = {}  # tokens generated before a preemption
        if isinstance(table, SlotTable):
            table.resume_gen = self.resume_gen
        self.done = env.event()
        self.log: list[tuple[float, str, int]] = []  # (time, what, replica id) for tests/reports
        self.events = EventLog()
        self.n_arrived = 0
        # A replica may plan the step after a jump's cut when the cut is made if it ends before
        # the run's end (`stop_at`, set by the runner) and the fleet's next decision that could
        # move queued requests (`next_decision_s`: an autoscaler's next tick; -inf here, so
        # never, unless a subclass knows better): see `Replica._interrupt`.
        # Both live in `ahead` (replica.Lookahead), which the replicas read; so do the held jump
        # ends (`Replica._hold`): the end of a decode jump that lies beyond the next arrival is
        # not scheduled when the jump starts but once the last arrival before it is routed
        # (`replica.release_held`), so that a jump an arrival cuts leaves no dead event in
        # SimPy's queue; `ahead.next_arrival_t` is the next arrival's time while holding is
        # exact (absorbing fleets), else inf, which holds nothing.
        self.ahead = self.replica_impl.Lookahead()
        self._chunks = None  # a streamed workload's remaining chunks (start_stream_arrivals)
        self._arrival_cbs = [self._on_arrival_timeout]  # one list for every arrival event
        self._rr = 0
        self._service_rng = rng.spawn(1)[0]
        self._setup_prefix_cache(engine, table)

    # -- prefix identity and the per-replica cache ---------------------------------------------
    def _setup_prefix_cache(self, engine, table) -> None:
        """engine.prefix_cache: None keeps the workload's cached counts (one infinite shared
        cache, the behaviour before the option); False prefills every prompt token; True gives
        each replica its own cache (sim/engine/prefix.py) over the workload's prefix keys."""
        self.prefix_keys = None
        self.prefix_stats = None
        self._no_reuse = engine.prefix_cache is False
        if engine.prefix_cache is None:
            return
        streamed = isinstance(table, SlotTable)
        if self._no_reuse:
            if not streamed:
                table.cached = [0] * table.n
            return
        self.prefix_stats = CacheStats()
        if streamed:
            # Each request's keys come with its chunk (`_next_chunk`), bound to its slot on
            # arrival; the block size is the workload's (`SlotTable.hash_block_tokens`).
            self.prefix_keys = SlotPrefixKeys(table.hash_block_tokens, engine.block_tokens)
            return
        self.prefix_keys = prefix_keys_of(
            table.hash_ids,
            table.hash_block_tokens,
            engine.block_tokens,
            table.prompt_tokens,
            f"{self.name}: engine.prefix_cache = true",
        )
        table.cached = [0] * table.n  # each replica writes its own hits at admission

    def _keys_of(self, w) -> PrefixKeys:
        """A streamed chunk's prefix keys (engine.prefix_cache = true)."""
        return prefix_keys_of(
            w.meta.get("hash_ids"),
            int(w.meta.get("hash_block_tokens", self.table.hash_block_tokens)),
            self.engine.block_tokens,
            w.prompt_tokens,
            f"{self.name}: engine.prefix_cache = true",
        )

    def new_prefix_cache(self) -> PrefixCache | None:
        keys = self.prefix_keys
        if keys is None:
            return None
        return PrefixCache(keys.unit_tokens, keys.blocks_per_unit)

    def prefix_cache_meta(self) -> dict | None:
        """The fleet's prefix-cache figures (CacheStats.to_meta): its replicas' own caches
        ("per_replica"), or what the workload's cached counts ("trace": one infinite shared
        cache) or no reuse ("off") gave the requests admitted. None in exponential mode, and on
        the streaming path unless the replicas have their own caches (the trace and off modes
        count over every request, gone by the end)."""
        table = self.table
        if self.exp:
            return None
        if self.prefix_stats is not None:
            evicted = sum(r.pcache.evicted_blocks for r in self.replicas if r.pcache is not None)
            meta = self.prefix_stats.to_meta(evicted, self.gpus_per_replica)
            return {"mode": "per_replica", **meta}
        if isinstance(table, SlotTable):
            return None
        stats = CacheStats()
        admitted = np.frombuffer(table._has_start, dtype=np.uint8).astype(bool)
        cached = np.asarray(table.cached, dtype=np.int64)
        stats.requests = int(admitted.sum())
        stats.prompt_tokens = int(table.prompt_tokens[admitted].sum())
        step_time, prompt = self.profile.step_time_s, table.prompt
        for i in np.flatnonzero(admitted & (cached > 0)).tolist():
            hit = int(cached[i])
            stats.hit_requests += 1
            stats.hit_tokens += hit
            stats.saved_prefill_s += prefill_saved_s(step_time, prompt[i], hit)
        mode = "off" if self._no_reuse else "trace"
        return {"mode": mode, **stats.to_meta(0, self.gpus_per_replica)}

    # -- replicas ----------------------------------------------------------------------------
    def new_replica(self):
        rid = len(self.replicas)
        if self.exp:
            rep = self.replica_impl.ExpReplica(
                self, rid, self.gpus_per_replica, self.engine.service_mean_s, self._service_rng
            )
        else:
            rep = self.replica_impl.Replica(
                self, rid, self.profile, self.gpus_per_replica, self._step_times, jump=self.jump
            )
        self.replicas.append(rep)
        return rep

    def warm(self, rep) -> None:
        rep.start()
        self.routable.append(rep)
        self.log.append((self.env.now, "warm", rep.rid))
        pending, since = self.pending, self._pending_since
        waits, now = self.events.cold_start_waits, self.env.now
        while pending and rep.state == "warm":
            waits.append(now - since.popleft())  # it waited for want of a warm replica
            self.route(pending.popleft())

    def drain(self, rep) -> None:
        """Stop routing to `rep`, move its queue elsewhere; it retires once its batch is done."""
        if rep in self.routable:
            self.routable.remove(rep)
        rep.state = "draining"
        self.log.append((self.env.now, "drain", rep.rid))
        for i in rep.take_waiting():
            self.route(i)
        rep.poke()

    def kill(self, rep) -> None:
        if rep in self.routable:
            self.routable.remove(rep)
        self.log.append((self.env.now, "kill", rep.rid))
        for i in rep.kill():
            self.route(i)
        self.on_stop(rep)

    def retire(self, rep) -> None:
        rep.state = "dead"
        self.log.append((self.env.now, "retire", rep.rid))
        self.on_stop(rep)

    def on_stop(self, rep) -> None:
        """Billing hook for subclasses."""

    def evicted(self, i: int, kv_full: bool, now: float = -1.0) -> None:
        """Request `i` lost its place in a running batch and will be recomputed: because the KV
        cache was full (a preemption) or because its replica was killed. now: when (the
        replica's time, which may be ahead of SimPy's clock), else -1: the clock."""
        attempts = self.table.attempts
        attempts[i] += 1
        if kv_full:
            self.events.add("preemptions", self.env.now if now < 0.0 else now)
        self.events.evicted(int(attempts[i]))

    # -- requests ----------------------------------------------------------------------------
    def start_arrivals(self) -> None:
        """The arrival process: callbacks on timeouts (one per distinct arrival time, absorbed
        into the events around them where exact), no generator to resume per arrival."""
        self._start(None, None)
        self._arrival_t = self.table.arrival_s.tolist()

    def start_stream_arrivals(self, chunks, on_exhausted) -> None:
        """Arrivals read chunk by chunk from `chunks` (Workloads with absolute, sorted times);
        each arriving request gets a slot of the `SlotTable`. The same events as
        `start_arrivals` on the concatenated workload. `on_exhausted(last_arrival_s)` runs once
        every request has arrived."""
        self._start(iter(chunks), on_exhausted)

    def _start(self, chunks, on_exhausted) -> None:
        self._chunks = chunks  # None: the whole workload is in the table
        self._chunk_keys = None  # a streamed chunk's prefix keys (engine.prefix_cache = true)
        self._chunk_ids = None  # a streamed chunk's prefix block ids (offsets, values), if any
        self._arriving = -1  # the streamed chunk's index of the request `submit` is given
        self._on_exhausted = on_exhausted
        self._chunk_base = 0  # workload index of the current chunk's first request
        self._arrival_t: list[float] = []
        self._arrival_next = 0
        self._recent_t = np.zeros(0)  # the previous chunk's arrivals (rate autoscaling)
        self._last_arrival = 0.0
        # `submit` may skip `divert` if this fleet never diverts (a self-hosted one without overflow).
        self._plain_submit = (
            type(self).divert is GpuFleet.divert or getattr(self, "overflow", True) is None
        )
        # Absorbing arrivals needs every effect of one to go through `now`: not for exponential
        # replicas (they are SimPy processes, interrupted at SimPy's clock) nor a fleet that may
        # divert (hybrid overflow).
        self._absorb = self._plain_submit and not self.exp
        # The loop itself (`_arrive`), with least-outstanding routing inlined where `route`
        # would do just that.
        least = self._router == "least_outstanding" and not self.exp
        self._arrivals = self.replica_impl.Arrivals(self, least)
        # Where the process's Initialize event would run: urgent, at the current time.
        self.env.schedule(Due(self._on_arrival_kick), URGENT)

    def _next_chunk(self) -> bool:
        """Load the next non-empty chunk of a streamed workload; False when there is none."""
        if self._chunks is None:
            return False
        for w in self._chunks:
            if not len(w):
                continue
            self._chunk_base += len(self._arrival_t)
            self._recent_t = np.asarray(self._arrival_t)
            self._arrival_t = w.arrival_s.tolist()
            own = self.prefix_stats is not None  # per-replica caches write hits at admission
            if self._no_reuse or own:
                cached = [0] * len(w)
            else:
                cached = w.cached_prompt_tokens.tolist()
            self._chunk = (w.prompt_tokens.tolist(), w.output_tokens.tolist(), cached)
            self._chunk_keys = self._keys_of(w) if own else None
            self._chunk_ids = w.meta.get("hash_ids")  # a hybrid's overflow may need them
            self._arrival_next = 0
            return True
        return False

    def _on_arrival_kick(self, _ev) -> None:
        """At the start: the first arrival, now if it is due, else in a timeout."""
        times = self._arrival_t
        if not times and not self._next_chunk():
            self._exhausted(self.env.now)
            return
        times = self._arrival_t
        now = self.env.now
        if times[0] > now:
            schedule_from(self.env, due_of(self._arrival_cbs), NORMAL, now, times[0] - now, now)
        else:
            self._arrive(0, now)

    def _on_arrival_timeout(self, ev) -> None:
        # The request this timeout waited for arrives now (`ev.t`, SimPy's clock), even if the
        # clock (SimPy adds the delay to it) differs from its time in the last bit, as in the
        # generator version.
        self._arrive(self._arrival_next, ev.t)

    def _arrive(self, i: int, now: float) -> None:
        """Request `i` arrives at `now` (SimPy's clock); then the following ones, each in its
        own timeout, or absorbed: handled in this call, at the clock its timeout would have
        given, when that is strictly before every event in SimPy's queue. Between two events
        nothing else happens, and events the absorbed arrivals schedule land at the same times
        and in the same order as with one timeout each, so the results are the same (exact).

        The loop is `replica.Arrivals.run`, compiled with the replica."""
        self._arrivals.run(i, now)

    @property
    def stop_at(self) -> float:
        """The run's end (set by the runner)."""
        return self.ahead.stop_at

    @stop_at.setter
    def stop_at(self, t: float) -> None:
        self.ahead.stop_at = t

    @property
    def next_decision_s(self) -> float:
        """The next decision that could move queued requests (an autoscaler's next tick)."""
        return self.ahead.next_decision_s

    @next_decision_s.setter
    def next_decision_s(self, t: float) -> None:
        self.ahead.next_decision_s = t

    def _exhausted(self, now: float) -> None:
        """Every request has arrived (the last at `now`): a streamed run now knows its size."""
        self._arrival_next = len(self._arrival_t)
        if self._chunks is None:
            return
        table = self.table
        table.n = self.n_arrived
        self._on_exhausted(self._last_arrival)
        if table.n_terminal >= table.n and not self.done.triggered:
            self._done_at(now)

    def arrivals_since(self, t: float) -> int:
        """Requests that arrived after time `t` (for the rate autoscaling policy)."""
        if self._chunks is None:
            arrived = self.table.arrival_s[: self.n_arrived]
            return self.n_arrived - int(np.searchsorted(arrived, t, "right"))
        k = self._arrival_next
        n = k - bisect_right(self._arrival_t, t, 0, k)
        if k == 0 or self._arrival_t[0] > t:
            n += len(self._recent_t) - int(np.searchsorted(self._recent_t, t, "right"))
        return n

    def submit(self, i: int, now: float | None = None) -> None:
        if self._never_fits[i]:
            # It could never finish: vLLM rejects prompts beyond the model length in the same way.
            self.drop(i, now)
            return
        if self.divert(i):
            return
        self.route(i)

    def divert(self, i: int) -> bool:
        """Hook: True if the request was sent elsewhere (hybrid overflow)."""
        return False

    def route(
        self,
        i: int,
        now: float | None = None,
        next_arrival_s: float = -math.inf,
        clock: float = -1.0,
    ):
        """Send request `i` to a replica (or queue or drop it) at `now` (default: the clock);
        next_arrival_s: the fleet's next arrival, when `i` is an arrival (`Replica.enqueue`);
        clock: SimPy's clock if the caller knows it (else -1). Returns the replica it joined,
        or None."""
        max_queue = self._max_queue
        if self.exp:
            if max_queue is not None and len(self.central) >= max_queue:
                self.drop(i, now)
                return
            self.central.append(i)
            for rep in self.routable:
                if rep.interruptible:
                    rep.poke()
                    break
            return
        reps = self.routable
        if not reps:
            if max_queue is not None and len(self.pending) >= max_queue:
                self.drop(i, now)
            else:
                self.pending.append(i)
                self._pending_since.append(self.env.now if now is None else now)
            return
        router = self._router
        if router == "round_robin":
            rep = reps[self._rr % len(reps)]
            self._rr += 1
        elif router == "least_outstanding":
            # The first replica with the fewest running + waiting (`min` keeps the first).
            rep = reps[0] if len(reps) == 1 else self._least_loaded(reps)
        elif router == "jsq":
            rep = min(reps, key=_queue_then_outstanding)
        else:
            rep = self._affinity(i, reps)
        if max_queue is not None and len(rep.waiting) >= max_queue:
            self.drop(i, now)
            return
        rep.enqueue(i, self.env.now if now is None else now, next_arrival_s, clock)
        return rep

    def _affinity(self, i: int, reps: list):
        """router = "prefix_affinity": the replica with the highest prefix_weight x (share of
        the prompt's blocks cached there) + load_weight x (spare load, min-max normalised over
        the replicas: 1 for the least loaded, 0 for the most), as llm-d's default scheduler
        profile (prefix-cache scorer weight 3, queue scorer weight 2) and BLIS's `weighted`
        router do. The first replica wins ties. The router reads each replica's cache exactly
        (llm-d's precise, KV-event-fed scorer), as of its last step boundary."""
        engine = self.engine
        keys = self.prefix_keys.lookup(i)
        loads = [r.load for r in reps]
        lo, hi = min(loads), max(loads)
        span = hi - lo
        w_prefix, w_load = engine.affinity_prefix_weight, engine.affinity_load_weight
        n_keys = len(keys)
        best, best_score = reps[0], -1.0
        for r, load in zip(reps, loads, strict=True):
            share = r.pcache.match(keys) / n_keys if n_keys else 0.0
            spare = (hi - load) / span if span else 1.0
            score = w_prefix * share + w_load * spare
            if score > best_score:
                best, best_score = r, score
        return best

    def complete(self, i: int, now: float) -> None:
        """Request `i` generated its last token at `now` (SimPy's clock, or the time of an event
        the replica chained ahead of it: `Replica._chained`)."""
        table = self.table
        # RequestTable.complete, inlined: once per request.
        table.w_finish_s[i] = now
        table.w_end_s[i] = now
        table.w_status[i] = OK
        table.n_terminal += 1
        table.finished.append(i)
        if table.n_terminal >= table.n and not self.done.triggered:
            self._done_at(now)

    def drop(self, i: int, now: float | None = None) -> None:
        table = self.table
        env = self.env
        now = env.now if now is None else now
        table.fail(i, now, DROPPED)
        if table.n_terminal >= table.n and not self.done.triggered:
            self._done_at(now)

    def _done_at(self, now: float) -> None:
        """The run ends at `now`: at once if that is SimPy's clock, else in an event at `now`,
        where an absorbed arrival or a chained replica event (a clock ahead of SimPy's) would
        have ended it in its own event."""
        if now == self.env.now:
            self.done.succeed()
        else:
            schedule_at(self.env, Due(self._on_done_at), NORMAL, now)

    def _on_done_at(self, _ev) -> None:
        if not self.done.triggered:
            self.done.succeed()

    # -- state for autoscalers and the time series -------------------------------------------
    def queued(self) -> int:
        return (
            len(self.pending)
            + len(self.central)
            + sum(len(r.waiting) for r in self.replicas if r.state != "dead")
        )

    def outstanding(self) -> int:
        return (
            len(self.pending)
            + len(self.central)
            + sum(r.outstanding for r in self.replicas if r.state != "dead")
        )

    def gpu_util(self, edges: np.ndarray, billed_gpu_s: np.ndarray) -> np.ndarray:
        busy = self.busy_gpu_s.array(len(edges) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(billed_gpu_s > 0, busy / billed_gpu_s, 0.0)
        return np.clip(util, 0.0, 1.0)


def _queue_then_outstanding(rep) -> tuple[int, int]:
    return (len(rep.waiting), rep.outstanding)
