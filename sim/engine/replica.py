"""One serving replica: a SimPy process doing vLLM-like continuous batching, step by step or in jumps.

A step runs the decoding sequences (one token each) plus prefill chunks under a token budget; its
duration comes from the perf model (`profile.step_time_s`). While the batch holds only decoding
sequences and nothing waiting can be admitted, every step looks the same except that each sequence's
context grows by one token, so the replica advances many steps in one timeout ("a jump") up to the
next completion or the point where the KV cache runs out.

Jump approximation: the step time is taken as linear in the step index between its exact values
at the first and last step of the jump (exact when the step time is affine in `decode_ctx_tokens`,
as in a memory-bound decode; a roofline `max` bends it and the trapezoid overestimates slightly:
tests/engine/test_jump.py bounds the end-to-end error against the step-by-step loop).

An arrival that could be admitted interrupts a jump; the replica finishes the step in progress
and admits it at that step boundary, as vLLM admits new requests every step.

This module is also compiled at install (Cython, typed by replica.pxd; sim/engine/native.py picks
the build, docs/engine.md "The compiled replica"): both builds must give the same floats, so
integer and float arithmetic stays in the order written here.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from heapq import heappop, heappush
from operator import attrgetter

import simpy
from simpy.events import NORMAL, URGENT

from sim.engine.prefix import hit_tokens, prefill_saved_s

try:  # Cython's pure-Python shim; `cython.compiled` is True only in the compiled build
    import cython

    COMPILED = bool(cython.compiled)
except ImportError:
    COMPILED = False


class Due:
    """The cheapest thing SimPy's event loop can process: `Environment.step` pops it off the
    queue, calls its callbacks and checks `_ok`, which is all a wake-up of the engine needs.
    Scheduled with `Environment.schedule`, it sorts with real events by (time, priority, id).

    `t` is the time it is processed at, SimPy's clock then: the scheduling helpers below set it
    to clock + delay, the very sum SimPy computes, so a callback reads its time here instead of
    calling the `Environment.now` property (NaN until scheduled by a helper that sets it)."""

    __slots__ = ("callbacks", "_ok", "t")

    def __init__(self, callback):
        self.callbacks = [callback]
        self._ok = True
        self.t = math.nan


def due_of(callbacks: list) -> Due:
    """A `Due` whose callbacks are `callbacks`: a list shared by every event of one kind, so no
    list is made per event. SimPy only reads an event's list (it takes it off the event when it
    runs it); the engine cuts an event by replacing its callbacks with `CUT`, never by clearing
    the list."""
    ev = Due.__new__(Due)
    ev.callbacks = callbacks
    ev._ok = True
    ev.t = _NAN
    return ev


CUT = ()  # the callbacks of an event that no longer resumes anything
# Module constants read by name (a module attribute such as `math.inf` is a getattr per use in
# the compiled build).
_INF = math.inf
_NAN = math.nan
_sqrt = math.sqrt


class BusySums:
    """GPU busy seconds per window of `window_s`, times `weight` (the GPUs of one replica): each
    step or jump adds its interval as it ends (`add`), split into the windows it overlaps.

    The parts are added to their windows one call at a time, in call order, with the very float
    operations of `accounting.WindowSums` (which spreads arrays of intervals with NumPy): the
    same sums, without holding the intervals (tests/engine/test_window_sums.py). The
    window of a time is `t // window_s` as Python computes it (`_floordiv`)."""

    def __init__(self, window_s: float, weight: float = 1.0):
        self.window_s = window_s
        self.weight = weight
        self._cap = 0  # windows held
        self._end = 0.0  # a time from which on an interval may need more windows
        self.values = array("d")
        self._v = self.values

    def add(self, t0: float, t1: float) -> None:
        """Add weight x (overlap of [t0, t1] with each window)."""
        w = self.window_s
        if t1 >= self._end:  # more windows, counted before anything is cast or allocated
            check_window_count(t1, w)
        k0 = int(_floordiv(t0, w))
        k1 = int(_floordiv(t1, w))
        if k1 >= self._cap:
            self._grow(k1 + 1)
        weight = self.weight
        v = self._v
        if k0 == k1:
            v[k0] += (t1 - t0) * weight
            return
        # First, whole middles, last: as WindowSums' parts.
        v[k0] += ((k0 + 1) * w - t0) * weight
        for k in range(k0 + 1, k1):
            v[k] += w * weight
        v[k1] += (t1 - k1 * w) * weight

    def _grow(self, n: int) -> None:
        cap = max(n, 2 * self._cap, 64)
        values = array("d", bytes(8 * cap))
        values[: self._cap] = self.values[: self._cap]
        self.values = values
        self._v = values
        self._cap = cap
        self._end = (cap - 1) * self.window_s

    def array(self, n_windows: int):
        """The sums of the first `n_windows` windows (zeros beyond those added to)."""
        import numpy as np

        out = np.zeros(n_windows)
        m = min(n_windows, self._cap)
        out[:m] = np.frombuffer(self.values, dtype=np.float64, count=m)
        return out


class Lookahead:
    """What a fleet knows of the time ahead, shared with its replicas, which read it at every
    planned cut and held jump end (typed fields: C reads in the compiled replica): the run's end
    (`stop_at`), the fleet's next decision that could move queued requests (`next_decision_s`:
    an autoscaler's next tick), the next arrival's time while replicas may hold jump ends
    (`next_arrival_t`, else inf), and the held jump ends (`held`, `Replica._hold`) with a lower
    bound of their times (`held_min`), so that arrivals look at them only when one may be due."""

    def __init__(self):
        self.stop_at = math.inf
        self.next_decision_s = -math.inf
        self.next_arrival_t = math.inf
        self.held: list = []
        self.held_min = math.inf


def _floordiv(a: float, b: float) -> float:
    """`a // b` for a >= 0 and b > 0 as Python and NumPy compute it (through fmod, which can
    differ from floor(a / b) in the last place: 1.0 // 0.1 is 9.0), in both builds. For such
    operands `a % b` is fmod(a, b) in Python and in Cython's C, where no Python call is made
    (Cython's floor division of C doubles is floor(a / b), hence this helper)."""
    mod = a % b
    div = (a - mod) / b
    if div:
        fl = div - div % 1.0  # floor(div), exact: the difference is representable
        if div - fl > 0.5:
            fl += 1.0
        return fl
    return 0.0


def check_window_count(end_s: float, window_s: float) -> None:
    """accounting.check_window_count (imported when first needed: accounting imports polars)."""
    from sim.engine.accounting import check_window_count as check

    check(end_s, window_s)


KILL = "kill"  # interrupt cause: the replica is gone (spot preemption), drop everything
WAKE = "wake"  # interrupt cause: new work may be admissible


class FinishHeap:
    """A min-heap of (finish step, request) pairs, ordered as those tuples are (by step, then
    request): `heapq` over a list of tuples in replica.py, two C arrays in the compiled build.
    The pops come in the same order either way: a min-heap pops the smallest pair it holds,
    whatever its layout, and equal pairs are the same pair.

    `n` is the number of pairs; `top_step` and `top_req` read the smallest (n > 0)."""

    def __init__(self):
        self.n = 0
        if COMPILED:
            self._cap = 64
            self._steps = array("q", bytes(8 * 64))
            self._reqs = array("q", bytes(8 * 64))
        else:
            self._h = []

    def top_step(self) -> int:
        return self._steps[0] if COMPILED else self._h[0][0]

    def top_req(self) -> int:
        return self._reqs[0] if COMPILED else self._h[0][1]

    def push(self, step: int, i: int) -> None:
        if not COMPILED:
            heappush(self._h, (step, i))
            self.n += 1
            return
        if self.n == self._cap:
            self._grow()
        steps, reqs = self._steps, self._reqs
        k = self.n
        while k > 0:  # sift up: parents greater than (step, i) move down
            parent = (k - 1) >> 1
            ps = steps[parent]
            pr = reqs[parent]
            if ps < step or (ps == step and pr <= i):
                break
            steps[k] = ps
            reqs[k] = pr
            k = parent
        steps[k] = step
        reqs[k] = i
        self.n += 1

    def pop(self) -> None:
        """Remove the smallest pair."""
        if not COMPILED:
            heappop(self._h)
            self.n -= 1
            return
        n = self.n - 1
        self.n = n
        if n == 0:
            return
        steps, reqs = self._steps, self._reqs
        step = steps[n]  # the last pair, sifted down from the top
        i = reqs[n]
        k = 0
        while True:
            c = 2 * k + 1
            if c >= n:
                break
            if c + 1 < n and (
                steps[c + 1] < steps[c] or (steps[c + 1] == steps[c] and reqs[c + 1] < reqs[c])
            ):
                c += 1
            cs = steps[c]
            cr = reqs[c]
            if step < cs or (step == cs and i <= cr):
                break
            steps[k] = cs
            reqs[k] = cr
            k = c
        steps[k] = step
        reqs[k] = i

    def _grow(self) -> None:
        more = bytes(8 * self._cap)
        steps, reqs = array("q", self._steps), array("q", self._reqs)
        steps.frombytes(more)
        reqs.frombytes(more)
        self._steps, self._reqs = steps, reqs
        self._cap *= 2


class Replica:
    """A physics replica. State lives in small per-replica dicts and lists keyed by request index.

    running: admission order (the newest is preempted first); prefilling: those with prompt tokens
    still to compute; dec: decoding sequences as (join_step, generated_at_join, kv_at_join,
    finish_step) so that a jump updates them all in O(1) through the replica's step counter.

    The engine loop is a SimPy process written as callbacks on the events it waits for (a step's
    or jump's timeout, a wake-up) rather than as a generator: the same events at the same times,
    without a generator resume, an `Interrupt` exception or an `Interruption` event per wake-up.
    A superseded timeout (a jump cut short) stays in SimPy's queue with its callback removed, as
    SimPy itself does for an interrupted process.
    """

    def __init__(self, fleet, rid: int, profile, gpus: int, step_times, jump: bool = True):
        self.env = fleet.env
        self.fleet = fleet
        self.table = fleet.table
        self.rid = rid
        self.gpus = gpus
        # profile.step_time_s as `st.step` and its decode-only form `st.decode`, the same floats
        # (sim/engine/steptime.py); called positionally: the hot path.
        self.st = step_times
        self.prompt, self.cached, self.output = (
            fleet.table.prompt,
            fleet.table.cached,
            fleet.table.output,
        )
        self.resume_gen = fleet.resume_gen
        self.complete = fleet.complete  # complete(i, now)
        self.busy = fleet.busy_gpu_s  # the fleet's BusySums: a C call per step or jump
        self.ahead = fleet.ahead  # the fleet's Lookahead
        self.kv_cap = int(profile.kv_capacity_tokens)
        engine = fleet.engine
        self.max_seqs = engine.max_batch_seqs
        self.max_tokens = engine.max_batched_tokens
        self.chunked = engine.chunked_prefill
        self.jump_enabled = jump
        # Merge a prefill step into the jump after it (one event): not where spot kills may
        # evict mid-step, as the merged step's effects are applied when it starts.
        self.merge = jump and getattr(fleet, "merge_prefill", True)
        self.waiting: deque[int] = deque()
        self.running: dict[int, None] = {}  # an ordered set: admission order, O(1) removal
        self.load = 0  # len(running) + len(waiting), kept as they change: the router reads it
        self.prefilling: list[int] = []
        self.todo: dict[int, int] = {}
        self.ctx: dict[int, int] = {}
        self.dec: dict[int, tuple[int, int, int, int]] = {}
        self.heap = FinishHeap()  # (finish step, request) of the decoders
        self.steps = 0
        self.kv_used = 0
        self.dec_ctx = 0
        self.state = "starting"  # starting | warm | draining | dead
        self.interruptible = False  # in a jump: a wake-up ends it at the next step boundary
        self.idle = False  # waiting for work: `poke` schedules the wake-up
        self._ev: Due | None = None  # the event the engine loop waits for
        self._ev_before: Due | None = None  # `_ev` when the last request was queued (`enqueue`)
        # The plain step in progress: its prefill chunks, decoders and start.
        self._step_chunks: list = []
        self._step_n_dec = 0
        self._step_start = 0.0
        # The jump in progress: k decode steps of n sequences from `start`, the i-th (from 0)
        # lasting t0 + i * delta; `merged`: a prefill step ran from `head` to `start` before it
        # in the same event (`_merge_head`).
        self._jump_start = 0.0
        self._jump_t0 = 0.0
        self._jump_delta = 0.0
        self._jump_k = 0
        self._jump_n = 0
        self._jump_merged = False
        self._jump_head = 0.0
        self._done = 0  # steps of the jump in progress (fewer once it is cut short)
        self._head_open = False  # a merged prefill step's busy time is not recorded yet
        # Per-replica prefix cache (engine.prefix_cache = true), else None: the hot path only
        # tests it at admission, completion and preemption.
        self.pcache = fleet.new_prefix_cache()
        self.pinned: dict[int, list[int]] = {}  # running request -> prompt keys it pins
        # Plan the step after a cut when the cut is made (`_interrupt`): only where nothing but
        # arrivals reads or changes a replica's queue (no queue-reading router, no cache).
        self.preplan = (
            self.merge
            and fleet.preplan_ok
            and fleet._router in ("round_robin", "least_outstanding")
            and self.pcache is None
        )
        self._looked_up: tuple = (-1, [])  # the last lookup: (request, its keys)
        # SimPy's clock at this replica's last event (a lower bound of the clock ever after).
        self.seen = 0.0
        # SimPy's clock while this replica's own callback runs (its event's time), else -1:
        # the scheduling helpers then need not read the `Environment.now` property.
        self._clock = -1.0
        # Chaining (`_chained`): while one of this replica's own callbacks runs (`_handle`),
        # an event it would schedule before everything in SimPy's queue is run at once, in the
        # same callback, instead: `_next_cbs` (None: nothing chained) at `_next_t`. Only where
        # nothing but arrivals reads or changes the replica (`preplan`) and it is warm.
        self.chains = self.preplan and fleet.chain_ok
        self._chain = False
        self._next_t = 0.0
        self._next_cbs = None
        # The engine loop's callbacks, bound once (not once per event).
        self._wake_cbs = [self._on_wake]
        self._step_end_cbs = [self._on_step_end]
        self._jump_end_cbs = [self._on_jump_end]
        self.seq_s = 0.0  # running sequences x seconds, over steps and jumps (batch occupancy)
        self.kv_s = 0.0  # KV tokens held x seconds (KV occupancy)

    # -- interface used by the fleet -------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        return self.load

    def start(self) -> None:
        self.state = "warm"
        # Where a new process's Initialize event would run: urgent, at the current time.
        self._wait_at(self.env.now, 0.0, self._wake_cbs, URGENT)

    def enqueue(
        self, i: int, now: float, next_arrival_s: float = -math.inf, clock: float = -1.0
    ) -> None:
        """Queue request `i`, arriving at `now` (the clock, or the clock an absorbed arrival
        would have had: see `GpuFleet._arrive`). next_arrival_s: when the fleet's next request
        arrives, if this is an arrival and nothing else can reach this replica before then.
        clock: SimPy's clock if the caller knows it (else -1)."""
        self._ev_before = self._ev  # what it waited for before (`release_held`)
        self.waiting.append(i)
        self.load += 1
        # `poke(need_admissible=True)`, inlined: once per arrival.
        self._clock = clock
        if self.idle:
            self.idle = False
            self._wait_at(now, 0.0, self._wake_cbs, NORMAL)
        elif self.interruptible and self._admissible(len(self.dec)):
            self.interruptible = False
            self._ev.callbacks = CUT  # the jump's end no longer resumes us
            self._interrupt(now, next_arrival_s)
        self._clock = -1.0

    def poke(self, need_admissible: bool = False) -> None:
        """Wake the loop if it sleeps (idle) or jumps and could now admit work or retire."""
        if self.idle:
            self.idle = False
            self._wait_at(self.env.now, 0.0, self._wake_cbs, NORMAL)
            return
        if not self.interruptible:
            return
        if need_admissible and not self._admissible(len(self.dec)):
            return
        self.interruptible = False
        self._ev.callbacks = CUT  # the jump's end no longer resumes us
        self._interrupt(self.env.now)

    def evict_all(self) -> list[int]:
        """Take every request off this replica (kill or drain): running ones must recompute."""
        out = list(self.running)  # admission order: the oldest goes back first
        for i in out:
            self._preempt(i, requeue=False)
        out.extend(self.waiting)
        self.load -= len(self.waiting)
        self.waiting.clear()
        return out

    def take_waiting(self) -> list[int]:
        out = list(self.waiting)
        self.load -= len(out)
        self.waiting.clear()
        return out

    def hold_kv(self, tokens: int) -> None:
        """Count `tokens` of KV cache held outside the batch (a disaggregated fleet's transfer in
        flight, sim/engine/disagg.py); a jump planned with less in use stops at its next step."""
        self.kv_used += tokens
        self.poke()

    def release_kv(self, tokens: int) -> None:
        """Free KV counted by `hold_kv`; waiting work may now be admissible."""
        self.kv_used -= tokens
        self.poke(need_admissible=True)

    def kill(self) -> list[int]:
        self.state = "dead"
        reqs = self.evict_all()
        self.idle = self.interruptible = False
        ev = self._ev
        if ev is not None and ev.callbacks:
            ev.callbacks = CUT  # whatever it was waiting for, it never resumes
        self._ev = None
        return reqs

    # -- the engine loop -------------------------------------------------------------------------
    def _wait_at(self, now: float, delay: float, callbacks: list, priority) -> None:
        """Wait `delay` from `now`, SimPy's clock or a clock ahead of it (an absorbed arrival, a
        planned cut, a chained event): the event lands at exactly now + delay, the time it
        would have had. callbacks: one of the replica's shared callback lists (`due_of`).
        Chained instead where it may be (`_chained`)."""
        if self._chain and priority == NORMAL and self._chained(now + delay, callbacks):
            return
        ev = due_of(callbacks)
        schedule_from(self.env, ev, priority, now, delay, self._clock)
        self._ev = ev

    def _chained(self, at: float, callbacks: list) -> bool:
        """While one of the replica's own callbacks runs (`_chain`): if its next event would
        land at `at` strictly before every event in SimPy's queue (within twice SimPy's clock,
        where it lands at exactly `at`), it would be the very next event and nothing else can
        happen before it, so `_handle` runs it itself, at that time, instead of scheduling it."""
        if at < self.env.peek() and at <= 2.0 * self._clock:
            self._next_t = at
            self._next_cbs = callbacks
            return True
        return False

    def _handle(self, callbacks: list, t: float) -> None:
        """Run the replica's event of kind `callbacks` at `t` (SimPy's clock), then the events
        it chains (`_chained`), each possibly chaining the next."""
        self.seen = self._clock = t
        self._chain = self.chains and self.state == "warm"
        self._next_cbs = callbacks
        self._next_t = t
        while self._next_cbs is not None:
            cbs = self._next_cbs
            self._next_cbs = None
            now = self._next_t
            if cbs is self._jump_end_cbs:
                self._end_jump(now)
            elif cbs is self._step_end_cbs:
                self._step_end(now)
            else:
                self._run(now)
        self._chain = False
        self._clock = -1.0

    def _on_wake(self, ev) -> None:
        self._handle(self._wake_cbs, ev.t)

    def _on_step_end(self, ev) -> None:
        self._handle(self._step_end_cbs, ev.t)

    def _step_end(self, now: float) -> None:
        """The plain step ended at `now`: its effects (once per step), then plan the next one."""
        chunks, n_dec, start = self._step_chunks, self._step_n_dec, self._step_start
        self.busy.add(start, now)
        self.seq_s += len(self.running) * (now - start)
        self.kv_s += self.kv_used * (now - start)
        self._apply_step(chunks, n_dec, now)
        self._run(now)

    def _apply_step(self, chunks, n_dec: int, now: float) -> None:
        """The effects of a step that ends at `now`: decoders grow by a token, prefill chunks
        land in the KV cache, finished prefills sample their first token."""
        if n_dec:
            self.steps += 1
            self.dec_ctx += n_dec
            self.kv_used += n_dec
            heap = self.heap
            if heap.n and heap.top_step() <= self.steps:
                self._pop_finished(now)
        if chunks:
            table = self.table
            resume_gen = self.resume_gen
            todo, ctx, output = self.todo, self.ctx, self.output
            has_first, first_token_s = table._has_first_token, table.w_first_token_s
            for i, c in chunks:
                ctx[i] += c
                left = todo[i] - c
                if left:
                    todo[i] = left
                    continue
                del todo[i]
                self.prefilling.remove(i)
                # Tokens generated before a preemption, plus the one this prefill step samples.
                generated = (resume_gen.pop(i, 0) if resume_gen else 0) + 1
                if not has_first[i]:  # RequestTable.first_token, inlined
                    has_first[i] = 1
                    first_token_s[i] = now
                kv = ctx.pop(i)
                out = output[i]
                if generated >= out:
                    del self.running[i]
                    self.load -= 1
                    if self.pcache is not None:
                        self._cache_release(i, True)
                    self.kv_used -= kv
                    self.complete(i, now)
                    continue
                finish_step = self.steps + out - generated
                self.dec[i] = (self.steps, generated, kv, finish_step)
                self.heap.push(finish_step, i)
                self.dec_ctx += kv

    def _on_jump_end(self, ev) -> None:
        self._handle(self._jump_end_cbs, ev.t)

    def _end_jump(self, now: float) -> None:
        """The jump's last step ended at `now`: all `_done` steps of it, or fewer if it was cut
        short."""
        self.interruptible = False
        start, n, merged, head = self._jump_start, self._jump_n, self._jump_merged, self._jump_head
        done = self._done
        if merged:  # a merged prefill step ran from `head` to `start`
            self._head_open = False
            self.busy.add(head, start)
        if not merged or done:
            self.busy.add(start, now)
        took = now - (head if merged else start)
        self.seq_s += len(self.running) * took
        self.kv_s += (self.kv_used + n * done / 2) * took
        self.steps = steps = self.steps + done
        self.dec_ctx += n * done
        self.kv_used += n * done
        if self.heap.top_step() <= steps:
            self._pop_finished(now)
        self._run(now)

    def _interrupt(self, now: float, next_arrival_s: float = -math.inf) -> None:
        """Cut the jump short: finish the step in progress, then plan again.

        Worked out at once (it depends only on the jump and the clock) instead of in an urgent
        event at the current time, as a SimPy interrupt would; only a jump cut exactly at a step
        boundary continues in such an event, so that same-time arrivals still join that step.

        Planned at once, too, where that is exact (`preplan`): when the cut ends before the
        fleet's next arrival, its next autoscaler decision and the end of the run, and no
        request finishes at it, nothing can reach or read this replica's queue before the cut,
        so the step after it is the one the cut's event would plan. The cut's effects and that
        step are worked out now, at the cut's time, and only the step's end is an event."""
        start, t0, delta, k = self._jump_start, self._jump_t0, self._jump_delta, self._jump_k
        env = self.env
        if self._jump_merged and now < start:
            # During a merged prefill step: cut at its end, where the plain step would have ended.
            self._done = 0
            if self.preplan and self._preplanned(landing_time(now, start), next_arrival_s):
                return
            ev = due_of(self._jump_end_cbs)
            land_at(env, ev, NORMAL, start, now, self._clock)
            self._ev = ev
            return
        elapsed = now - start
        done = _steps_reached(elapsed, t0, delta, k)
        rest = done * t0 + delta * done * (done - 1) / 2 - elapsed
        self._done = done
        delay = rest if rest > 0 else 0.0
        if self.preplan and done < k:
            # The time the cut's event lands at (`_wait_at`).
            if self._preplanned(now + delay, next_arrival_s):
                return
        self._wait_at(now, delay, self._jump_end_cbs, NORMAL if rest > 0 else URGENT)

    def _preplanned(self, cut: float, next_arrival_s: float) -> bool:
        """Apply the cut ending at `cut` and plan what follows it now, if that is exact (and
        the cut is within twice SimPy's clock, as `land_at` needs: checked against `seen`, a
        lower bound of the clock)."""
        ahead = self.ahead
        if (
            cut < next_arrival_s
            and cut < ahead.stop_at
            and cut < ahead.next_decision_s
            and cut <= 2.0 * self.seen
        ):
            self._end_jump(cut)
            return True
        return False

    def _run(self, now: float) -> None:
        """Plan what comes next from `now` (the clock, or a cut's time ahead of it: see
        `_interrupt`) and schedule the event that ends it (or go idle, or retire)."""
        running, waiting, dec = self.running, self.waiting, self.dec
        while True:
            if self.state == "dead":
                self._ev = None
                return
            if not running and not waiting:
                self._ev = None
                if self.state == "draining":
                    self.fleet.retire(self)
                    return
                self.idle = True
                return
            n = len(dec)
            if (
                n
                and self.jump_enabled
                and not self.prefilling
                and (not waiting or len(running) >= self.max_seqs or not self._admissible(n))
            ):
                # Steps until the batch changes: the earliest completion or KV exhaustion.
                heap = self.heap
                while True:
                    finish_step = heap.top_step()
                    d = dec.get(heap.top_req())
                    if d is not None and d[3] == finish_step:
                        break
                    heap.pop()
                k = finish_step - self.steps
                k_kv = (self.kv_cap - self.kv_used) // n
                if k_kv < k:
                    k = k_kv
                if k > 1:
                    dec_ctx = self.dec_ctx
                    t0 = self.st.decode(n, dec_ctx)
                    t_last = self.st.decode(n, dec_ctx + n * (k - 1))
                    delta = (t_last - t0) / (k - 1)
                    self._jump_start = now
                    self._jump_t0 = t0
                    self._jump_delta = delta
                    self._jump_k = k
                    self._jump_n = n
                    self._jump_merged = False
                    self._done = k
                    self.interruptible = True
                    delay = k * t0 + delta * k * (k - 1) / 2
                    if self.preplan and self._hold(now + delay):
                        return
                    self._wait_at(now, delay, self._jump_end_cbs, NORMAL)
                    return
            chunks, prefill, n_dec, attn = self._plan_step(now)
            if not chunks and not n_dec:
                if not running:
                    # The queue's head cannot fit beside KV held outside the batch (`hold_kv`):
                    # wait for `release_kv` (unreachable otherwise: an empty replica admits).
                    self._ev = None
                    self.idle = True
                    return
                continue
            dt = self.st.step(prefill, attn, n_dec, self.dec_ctx if n_dec else 0)
            if self.merge and chunks and self._merge_head(chunks, n_dec, dt, now):
                return
            self._step_chunks = chunks
            self._step_n_dec = n_dec
            self._step_start = now
            self._wait_at(now, dt, self._step_end_cbs, NORMAL)
            return

    def _merge_head(self, chunks, n_dec: int, dt: float, now: float) -> bool:
        """Run the planned step and the decode-only jump that would follow it as one event, if
        nothing but an arrival could change what happens at the step's end: every chunk finishes
        its prompt, none of those requests or of the decoders finishes at this step, the queue
        head could not be admitted after it, and the jump would be longer than one step. The
        step's effects are applied now, with its end time (the replica is never killed while
        merging: fleets with spot kills do not merge); an admissible arrival during the step
        cuts at its end, exactly where the plain step would have ended."""
        todo, output, resume_gen = self.todo, self.output, self.resume_gen
        if len(self.prefilling) != len(chunks):
            return False
        steps = self.steps + (1 if n_dec else 0)
        first = _INF
        for i, c in chunks:
            if todo[i] != c:
                return False
            generated = (resume_gen.get(i, 0) if resume_gen else 0) + 1
            if generated >= output[i]:
                return False
            first = min(first, steps + output[i] - generated)
        heap, dec = self.heap, self.dec
        while heap.n:
            finish_step = heap.top_step()
            d = dec.get(heap.top_req())
            if d is not None and d[3] == finish_step:
                if finish_step <= steps:
                    return False
                first = min(first, finish_step)
                break
            heap.pop()
        n = len(dec) + len(chunks)
        kv_used = self.kv_used + n_dec
        if self._admissible(n, kv_used):
            return False
        k = min(first - steps, (self.kv_cap - kv_used) // n)
        if k <= 1:
            return False
        env = self.env
        head = now
        t1 = head + dt
        self._apply_step(chunks, n_dec, t1)
        dec_ctx = self.dec_ctx
        t0 = self.st.decode(n, dec_ctx)
        delta = (self.st.decode(n, dec_ctx + n * (k - 1)) - t0) / (k - 1)
        self._jump_start = t1
        self._jump_t0 = t0
        self._jump_delta = delta
        self._jump_k = k
        self._jump_n = n
        self._jump_merged = True
        self._jump_head = head
        self._head_open = True
        self._done = k
        self.interruptible = True
        at = t1 + (k * t0 + delta * k * (k - 1) / 2)
        if self.preplan and self._hold(at):
            return True
        if self._chain and self._chained(at, self._jump_end_cbs):
            return True
        ev = due_of(self._jump_end_cbs)
        land_at(env, ev, NORMAL, at, now, self._clock)
        self._ev = ev
        return True

    def _hold(self, at: float) -> bool:
        """Hold the end of the jump just planned, landing at `at`, instead of scheduling it, if
        it lies beyond the fleet's next arrival (and before the run's end and the next
        autoscaler decision, with nothing else reaching this replica in between: `preplan`).
        The fleet schedules it once the last arrival before it is routed
        (`release_held`), at exactly `at`; an arrival that cuts the jump first just
        empties it, so the cut leaves no dead event in SimPy's queue. From SimPy's clock here,
        the event would land at exactly `at` too (within twice the clock: checked against
        `seen`), and the fleet keeps its order among events of the same time, so every event
        runs when and in the order it did when scheduled here (tests/engine/test_hold.py)."""
        ahead = self.ahead
        if (
            at > ahead.next_arrival_t
            and at < ahead.stop_at
            and at < ahead.next_decision_s
            and at <= 2.0 * self.seen
        ):
            ev = due_of(self._jump_end_cbs)
            ev.t = at
            ahead.held.append(ev)
            if at < ahead.held_min:
                ahead.held_min = at
            self._ev = ev
            return True
        return False

    def settle(self, end: float) -> None:
        """At the end of a run: the busy time of a merged prefill step that ended by `end`
        (the plain step's end event would have recorded it)."""
        if self._head_open and self._jump_start <= end:
            self._head_open = False
            self.busy.add(self._jump_head, self._jump_start)

    # -- scheduling ------------------------------------------------------------------------------
    def _need(self, i: int) -> int:
        """Prompt tokens to compute on (re)admission: the uncached prompt plus any tokens already
        generated before a preemption (recompute)."""
        return self.prompt[i] - self.cached[i] + self.resume_gen.get(i, 0)

    def _admissible(self, n_dec: int, kv_used: int | None = None) -> bool:
        """Would the next step admit the head of the waiting queue (FCFS, no skipping)?
        kv_used: the cache use to judge by (default: now)."""
        if not self.waiting or len(self.running) >= self.max_seqs:
            return False
        i = self.waiting[0]
        free = self.kv_cap - (self.kv_used if kv_used is None else kv_used) - n_dec
        base = self.cached[i]
        if self.chunked:
            return self.max_tokens - n_dec > 0 and free >= base + 1
        return free + n_dec >= base + self._need(i)

    def _plan_step(self, now: float):
        dec, cached = self.dec, self.cached
        n = len(dec)
        while n and self.kv_cap - self.kv_used < n:
            self._preempt(next(reversed(self.running)), True, now)
            n = len(dec)
        chunks: list[tuple[int, int]] = []
        attn = 0.0
        prefill = 0
        free = self.kv_cap - self.kv_used - n
        waiting, running, max_seqs = self.waiting, self.running, self.max_seqs
        if self.chunked:
            budget = self.max_tokens - n
            prefilling, todo, ctx = self.prefilling, self.todo, self.ctx
            prompt, resume_gen = self.prompt, self.resume_gen
            has_start, start_s = self.table._has_start, self.table.w_start_s
            if prefilling:
                for i in prefilling:
                    if budget <= 0 or free <= 0:
                        break
                    c = min(todo[i], budget, free)
                    chunks.append((i, c))
                    attn += c * (ctx[i] + (c + 1) / 2)
                    prefill += c
                    budget -= c
                    free -= c
            pc = self.pcache
            while waiting and budget > 0 and len(running) < max_seqs:
                i = waiting[0]
                base = cached[i] if pc is None else self._cache_lookup(i)
                if free < base + 1:
                    break
                # `_need` and `_admit`, inlined: once per admission.
                need = prompt[i] - base + (resume_gen.get(i, 0) if resume_gen else 0)
                c = need if need < budget else budget
                if free - base < c:
                    c = free - base
                waiting.popleft()
                running[i] = None
                prefilling.append(i)
                todo[i] = need
                ctx[i] = base
                self.kv_used += base
                if pc is not None:
                    self._cache_admit(i, base)
                if not has_start[i]:  # RequestTable.started, inlined
                    has_start[i] = 1
                    start_s[i] = now
                chunks.append((i, c))
                attn += c * (base + (c + 1) / 2)
                prefill += c
                budget -= c
                free -= base + c
        else:
            # Without chunking, vLLM's default scheduler runs prefill-only steps: decodes pause.
            budget = self.max_tokens
            free += n
            pc = self.pcache
            while waiting and len(running) < max_seqs:
                i = waiting[0]
                base = cached[i] if pc is None else self._cache_lookup(i)
                need = self._need(i)
                if (chunks and need > budget) or free < base + need:
                    break
                self._admit(i, base, need, now)
                chunks.append((i, need))
                attn += need * (base + (need + 1) / 2)
                prefill += need
                budget -= need
                free -= base + need
            if chunks:
                n = 0
        self.kv_used += prefill
        if not chunks and not n and running:
            # Only partial prefills that cannot grow: free KV by recomputing the newest later.
            self._preempt(next(reversed(running)), True, now)
        return chunks, prefill, n, attn

    def _admit(self, i: int, base: int, need: int, now: float) -> None:
        self.waiting.popleft()
        self.running[i] = None
        self.prefilling.append(i)
        self.todo[i] = need
        self.ctx[i] = base
        self.kv_used += base
        if self.pcache is not None:
            self._cache_admit(i, base)
        table = self.table
        if not table._has_start[i]:  # RequestTable.started, inlined: once per admission
            table._has_start[i] = 1
            table.w_start_s[i] = now

    # -- the prefix cache (engine.prefix_cache = true) --------------------------------------
    def _cache_lookup(self, i: int) -> int:
        """Prompt tokens of request `i` this replica's cache holds now, also written to the
        table's `cached` (read by `_need` and `_admissible`). Idle blocks are first trimmed to
        the room running work leaves, so a hit never counts a block that should be gone."""
        pc = self.pcache
        pc.trim(self.kv_cap - self.kv_used)
        keys = self.fleet.prefix_keys.lookup(i)
        self._looked_up = (i, keys)
        base = hit_tokens(pc.match(keys), pc.unit_tokens, self.prompt[i])
        self.cached[i] = base
        return base

    def _cache_admit(self, i: int, base: int) -> None:
        """Request `i` is admitted with `base` cached tokens: it pins its prompt's blocks (the
        hits and those it computes, cached from now on); its first admission is counted."""
        last = self._looked_up
        keys = last[1] if last[0] == i else self.fleet.prefix_keys.lookup(i)
        self.pcache.pin(keys)
        self.pinned[i] = keys
        if not self.table._has_start[i]:
            prompt = self.prompt[i]
            # The profile's own method, the same floats as `st.step`: taken as an attribute of
            # the typed `st` in the compiled build, `st.step` gave StepTimes's method instead of
            # ProfileStepTimes's override (test_native's prefix-cache test caught it).
            saved = prefill_saved_s(self.fleet.profile.step_time_s, prompt, base)
            self.fleet.prefix_stats.admitted(prompt, base, saved)

    def _cache_release(self, i: int, finished: bool, trim: bool = True) -> None:
        """Request `i` leaves the batch (called before its KV is freed): idle blocks evicted by
        the batch's growth go first (`trim`; False when the caller trimmed before releasing
        several), then its blocks turn idle; a finished request also caches the blocks it
        wrote after its prompt (its output, where the workload names them)."""
        pc = self.pcache
        if trim:
            pc.trim(self.kv_cap - self.kv_used)
        keys = self.pinned.pop(i)
        if finished:
            written = self.fleet.prefix_keys.keys(i)
            if len(written) > len(keys):
                pc.add_idle(written[len(keys) :])
        pc.unpin(keys)

    def _pop_finished(self, now: float) -> None:
        """Requests whose last token is generated by now (`now`: the clock) complete."""
        heap, dec, steps, running = self.heap, self.dec, self.steps, self.running
        complete = self.complete
        pc = self.pcache
        if pc is not None:  # before any KV is freed (the frees land after the loop)
            pc.trim(self.kv_cap - self.kv_used)
            self._pop_finished_cached(now)
            return
        freed = 0
        while heap.n:
            finish_step = heap.top_step()
            if finish_step > steps:
                break
            i = heap.top_req()
            heap.pop()
            d = dec.get(i)
            if d is None or d[3] != finish_step:
                continue
            del dec[i]
            freed += d[2] + steps - d[0]
            del running[i]
            self.load -= 1
            complete(i, now)
        self.dec_ctx -= freed
        self.kv_used -= freed

    def _pop_finished_cached(self, now: float) -> None:
        """`_pop_finished` with a prefix cache: the blocks of requests finishing at the same
        step turn idle in request order (the cache's LRU order depends on it), whatever their
        ids; on the streaming path ids are reused slots, so they are ordered by request."""
        heap, dec, steps, running = self.heap, self.dec, self.steps, self.running
        due = []
        while heap.n:
            finish_step = heap.top_step()
            if finish_step > steps:
                break
            i = heap.top_req()
            heap.pop()
            d = dec.get(i)
            if d is not None and d[3] == finish_step:
                # Taken off at once: a request preempted and readmitted can sit in the heap twice
                # with the same finish step (`_pop_finished` skips the second entry the same way).
                del dec[i]
                due.append((finish_step, i, d))
        request = getattr(self.table, "request", None)
        if request is not None:  # a SlotTable: slot -> request
            due.sort(key=lambda e: (e[0], int(request[e[1]])))
        freed = 0
        for _, i, d in due:
            self._cache_release(i, True, trim=False)
            freed += d[2] + steps - d[0]
            del running[i]
            self.load -= 1
            self.complete(i, now)
        self.dec_ctx -= freed
        self.kv_used -= freed

    def _preempt(self, i: int, requeue: bool = True, now: float = -1.0) -> None:
        """Evict by recompute: free the KV, remember how many tokens were generated. now: the
        replica's time (ahead of SimPy's clock in a planned cut or a chained event), else -1:
        SimPy's clock."""
        del self.running[i]
        if self.pcache is not None:
            self._cache_release(i, False)
        d = self.dec.pop(i, None)
        if d is not None:
            kv = d[2] + self.steps - d[0]
            self.dec_ctx -= kv
            self.kv_used -= kv
            self.fleet.resume_gen[i] = d[1] + self.steps - d[0]
        else:
            self.prefilling.remove(i)
            self.kv_used -= self.ctx.pop(i)
            del self.todo[i]
        self.fleet.evicted(i, requeue, now)  # a kill evicts without requeueing here
        if requeue:
            self.waiting.appendleft(i)
        else:
            self.load -= 1


_UNKNOWN = -math.inf  # the next arrival's time past the end of a streamed chunk


class Arrivals:
    """A GPU fleet's arrival loop (`GpuFleet._arrive` states its rules), compiled with the
    replica: each arrival is routed (least-outstanding routing inlined where `least`, the
    fleet's `route` otherwise), the following arrivals are absorbed where exact, and held jump
    ends due by the next arrival are released (`release_held`). The fleet keeps the arrival
    state it shares with the rest of the engine (`_arrival_t`, `_arrival_next`, `n_arrived`,
    the streamed chunk); this loop reads it at entry and at a chunk's end, and writes it back
    before calling anything that reads it."""

    def __init__(self, fleet, least: bool):
        self.fleet = fleet
        self.env = fleet.env
        self.ahead = fleet.ahead
        self.routable = fleet.routable  # the fleet's list (changed in place only)
        self.never_fits = fleet._never_fits
        self.plain = fleet._plain_submit
        self.absorb = fleet._absorb
        self.hold = fleet._absorb and fleet.hold_ok
        self.least = least  # GpuFleet.route would pick the least-loaded replica itself
        self.max_queue = -1 if fleet._max_queue is None else fleet._max_queue
        self.cbs = fleet._arrival_cbs

    def run(self, i: int, now: float) -> None:
        fleet = self.fleet
        times = fleet._arrival_t
        n = len(times)
        env = self.env
        never_fits = self.never_fits
        plain, absorb, hold = self.plain, self.absorb, self.hold
        ahead = self.ahead
        streamed = fleet._chunks is not None
        table = fleet.table
        base, keys = 0, None
        prompt = output = cached = None
        if streamed:  # the current chunk's columns (read again when the next chunk loads)
            base, keys = fleet._chunk_base, fleet._chunk_keys
            prompt, output, cached = fleet._chunk
        clock = now
        upto = _INF
        arrived = 0  # added to fleet.n_arrived before anything reads it
        while True:
            arrived += 1
            # The next arrival's time, for `Replica._interrupt` (unknown past a chunk's end).
            t_next = times[i + 1] if i + 1 < n else _UNKNOWN
            if hold:  # what a replica may hold now (past a chunk's end: nothing)
                upto = t_next if t_next != _UNKNOWN else _INF
                ahead.next_arrival_t = upto
            if streamed:
                j = table.assign(base + i, times[i], prompt[i], output[i], cached[i])
                if keys is not None:
                    fleet.prefix_keys.bind(j, keys, i)
            else:
                j = i
            if plain and not never_fits[j]:
                rep = self._route(j, now, t_next, clock)  # `submit(j)`: fleets that never divert
            else:
                if streamed:  # its place in the chunk (a hybrid's overflow keeps its ids)
                    fleet._arriving = i
                fleet.submit(j, now)
                rep = None
            if hold and ahead.held_min <= upto:
                # Held jump ends due by the next arrival go to SimPy's queue (those this arrival
                # cut are gone); past a chunk's end, all of them.
                release_held(ahead, env, upto, now, rep, clock)
            i += 1
            if i >= n:
                fleet.n_arrived += arrived
                arrived = 0
                if not fleet._next_chunk():
                    fleet._last_arrival = times[n - 1]
                    fleet._exhausted(now)
                    return
                times = fleet._arrival_t
                n = len(times)
                i = 0
                base, keys = fleet._chunk_base, fleet._chunk_keys
                prompt, output, cached = fleet._chunk
            t = times[i]
            if t <= now:  # a same-time arrival: at this clock
                continue
            at = now + (t - now)  # the clock its timeout would give
            # Absorbed within twice SimPy's clock, so that what it schedules lands exactly
            # (`land_at`).
            if absorb and at < env.peek() and at <= 2.0 * clock:
                now = at
                continue
            fleet.n_arrived += arrived
            fleet._arrival_next = i
            schedule_from(env, due_of(self.cbs), NORMAL, now, t - now, clock)
            return

    def _route(self, j: int, now: float, t_next: float, clock: float):
        """`GpuFleet.route(j, now, t_next, clock)`: the replica `j` joined, or None."""
        reps = self.routable
        if not self.least or not reps:
            return self.fleet.route(j, now, t_next, clock)
        # The first replica with the fewest running + waiting (`min` keeps the first).
        rep = reps[0] if len(reps) == 1 else least_loaded(reps)
        if self.max_queue >= 0 and len(rep.waiting) >= self.max_queue:
            self.fleet.drop(j, now)
            return None
        rep.enqueue(j, now, t_next, clock)
        return rep


def release_held(ahead, env, upto: float, now: float, rep, clock: float = -1.0) -> int:
    """After an arrival at `now` (the clock, or an absorbed arrival's clock ahead of SimPy's
    `clock`, read when negative) was routed to `rep` (or None): schedule the held jump ends
    (`ahead.held`) due at or before `upto`, the next arrival's time, in the order they were
    held, at exactly the time each was held for (`Replica._hold` keeps it within twice SimPy's
    clock, so `land_at` lands it there); drop those a cut emptied.

    Scheduled after the arrival rather than before it, so that the jump it cuts leaves no
    event. Only `rep` scheduled anything meanwhile (its next step or jump end, or a wake-up
    now); had that event the very time of a held one, it would now come first among the two,
    though it was scheduled after it: it is then scheduled again after them (the first copy
    emptied), so every event keeps its order. Returns how many such orders it kept (0 or 1)."""
    keep = []
    held = ahead.held
    # The event `rep` scheduled while the arrival was routed, if any (not one it held, nor
    # one it waited for before: that one kept its place in the queue).
    mine = rep._ev if rep is not None else None
    if mine is not None and (mine is rep._ev_before or not mine.callbacks or mine in held):
        mine = None
    tie = None
    low = _INF
    for ev in held:
        if not ev.callbacks:  # cut before it was due: no event at all
            continue
        t = ev.t
        if t <= upto:
            if mine is not None and mine.t == t:
                tie = mine
            land_at(env, ev, NORMAL, t, now, clock)
        else:
            keep.append(ev)
            if t < low:
                low = t
    ahead.held = keep
    ahead.held_min = low
    if tie is None:
        return 0
    # Scheduled after those of its time, as it was.
    again = due_of(tie.callbacks)
    tie.callbacks = CUT
    land_at(env, again, NORMAL, tie.t, now, clock)
    rep._ev = again
    return 1


def least_loaded(reps: list):
    """The first of `reps` with the fewest running + waiting requests: `min(reps, key=load)`,
    as a loop over typed replicas in the compiled build."""
    if not COMPILED:
        return min(reps, key=_load)
    best = reps[0]
    low = best.load
    for r in reps:
        if r.load < low:
            best = r
            low = r.load
    return best


_load = attrgetter("load")


def schedule_at(env: simpy.Environment, event, priority, at: float) -> None:
    """`env.schedule(event, priority, delay)` with the delay that lands at time `at`: at - now is
    exact when at <= 2 now (Sterbenz), and otherwise the delay moves by ulps until now + delay
    is the first time >= at it can reach. That is `at` itself except in a rounding tie (the
    clock's last bit halfway between two times of `at`'s binade, possible only when `at` lies in
    a higher power-of-two range than the clock): then the event lands one ulp after `at`."""
    clock = env.now
    delay = _delay_to(clock, at)
    event.t = clock + delay
    env.schedule(event, priority, delay)


def schedule_from(
    env: simpy.Environment, event, priority, now: float, delay: float, clock: float = -1.0
) -> None:
    """`env.schedule(event, priority, delay)` from a clock `now` that may be ahead of SimPy's
    (an absorbed arrival or a planned cut): the event lands at exactly now + delay, the time it
    would have had. clock: SimPy's clock if the caller knows it (else read, when negative)."""
    if clock < 0.0:
        clock = env.now
    if now == clock:
        event.t = clock + delay
        env.schedule(event, priority, delay)
    else:
        land_at(env, event, priority, now + delay, now, clock)


def land_at(
    env: simpy.Environment, event, priority, at: float, now: float, clock: float = -1.0
) -> None:
    """Schedule `event` where `schedule_at(env, event, priority, at)` would land it if SimPy's
    clock read `now`: a clock ahead of SimPy's (an absorbed arrival or a planned cut), never
    past twice it. From SimPy's clock that time is reachable unless in a rounding tie (possible
    only early in a run, while the clock is under half of `at`); then a relay event at `now`
    (reachable: within twice the clock) schedules it from there. clock: SimPy's clock if the
    caller knows it (else read, when negative)."""
    if clock < 0.0:
        clock = env.now
    if at <= 2.0 * clock:  # at - now and at - clock are exact (Sterbenz): it lands at `at`
        event.t = clock + (at - clock)
        env.schedule(event, priority, at - clock)
        return
    target = landing_time(now, at)
    if landing_time(clock, target) == target:
        schedule_at(env, event, priority, target)
        return

    def relay(_ev) -> None:
        schedule_at(env, event, priority, target)

    schedule_at(env, Due(relay), priority, now)


def landing_time(now: float, at: float) -> float:
    """The time an event `schedule_at(env, ..., at)` lands at when the clock reads `now`."""
    return now + _delay_to(now, at)


def _delay_to(now: float, at: float) -> float:
    delay = at - now
    if now + delay != at:
        # Only when at > 2 now: the delay is then over at / 2 and each ulp step moves the sum
        # by at most one ulp of `at`, so these loops take a step or two.
        while now + delay < at:
            delay = math.nextafter(delay, math.inf)
        while now + math.nextafter(delay, -math.inf) >= at:
            delay = math.nextafter(delay, -math.inf)
    return delay


def _ceil_int(x: float) -> int:
    """math.ceil(x) for a float x with |x| < 4e18, through a C long long in the compiled build
    (`_steps_reached` passes about the steps of one jump). Beyond, math.ceil's own result, which
    the compiled build cannot return as a long long past 2**63 (OverflowError); a NaN or an
    infinity raises in both, as in math.ceil."""
    if not -4.0e18 < x < 4.0e18:
        return math.ceil(x)
    m = int(x)  # towards zero: the ceiling for x <= 0, one under it for a fractional x > 0
    return m + 1 if m < x else m


def _steps_reached(elapsed: float, t0: float, delta: float, k: int) -> int:
    """The first step boundary at or after `elapsed` into a jump whose i-th step (from 0) lasts
    t0 + i * delta: smallest m with m*t0 + delta*m*(m-1)/2 >= elapsed, within [1, k]."""
    if abs(delta) < 1e-18 * max(t0, 1e-30):
        m = _ceil_int(elapsed / t0 - 1e-12) if t0 > 0 else k
    else:
        a, b = delta / 2, t0 - delta / 2
        disc = max(b * b + 4 * a * elapsed, 0.0)
        m = _ceil_int((-b + _sqrt(disc)) / (2 * a) - 1e-9)
    return min(max(m, 1), k)


class ExpReplica:
    """Validation replica: one request at a time, exponential service time, no physics.

    Together with the fleet's single FIFO queue this is exactly an M/M/c server.
    """

    def __init__(self, fleet, rid: int, gpus: int, mean_s: float, rng):
        self.env = fleet.env
        self.fleet = fleet
        self.table = fleet.table
        self.rid = rid
        self.gpus = gpus
        self.mean_s = mean_s
        self.rng = rng
        self.busy = False
        self.current = -1
        self.state = "starting"
        self.interruptible = False
        self.process = None
        self.waiting: deque[int] = deque()  # unused: the fleet's central queue feeds it

    @property
    def outstanding(self) -> int:
        return int(self.busy)

    def start(self) -> None:
        self.state = "warm"
        self.process = self.env.process(self.serve())

    def poke(self, need_admissible: bool = False) -> None:
        if self.interruptible:
            self.interruptible = False
            self.process.interrupt(WAKE)

    def evict_all(self) -> list[int]:
        return []

    def take_waiting(self) -> list[int]:
        return []

    def kill(self) -> list[int]:
        self.state = "dead"
        lost = [self.current] if self.busy else []
        for i in lost:
            self.fleet.evicted(i, kv_full=False)
        self.busy = False
        if self.process is not None and self.process.is_alive:
            self.process.interrupt(KILL)
        return lost

    def serve(self):
        env, table, queue = self.env, self.table, self.fleet.central
        try:
            while True:
                if not queue or self.state != "warm":
                    if self.state == "draining":
                        self.fleet.retire(self)
                        return
                    self.interruptible = True
                    try:
                        yield env.event()
                    except simpy.Interrupt as irq:
                        if irq.cause == KILL:
                            raise
                    continue
                i = queue.popleft()
                self.current = i
                start = env.now
                table.started(i, start)
                table.first_token(i, start)
                self.busy = True
                yield env.timeout(self.rng.exponential(self.mean_s))
                self.busy = False
                self.fleet.busy_gpu_s.add(start, env.now)
                self.fleet.complete(i, env.now)
        except simpy.Interrupt as irq:
            if irq.cause != KILL:
                raise
