"""Per-request state of one fleet simulation, held in preallocated numpy arrays indexed by request.

The engine writes times and statuses here as events happen; `sim.engine.accounting` turns the
arrays into the time series and the `FleetResult` at the end. No Python object per request.

The hot path writes one element at a time through `w_*` memoryviews of the same arrays (a
memoryview's item assignment costs a fraction of numpy's); everything else reads and writes the
numpy arrays themselves.
"""

from __future__ import annotations

import numpy as np

from sim.engine.result import DROPPED, FAILED, OK, UNFINISHED
from sim.engine.stream import RequestBatch
from sim.workload import MOONCAKE_BLOCK_TOKENS, Workload


class RequestTable:
    """Result arrays (numpy) plus read-only token counts as Python lists for the hot path.

    `end_s` is the time a request reached its final status (ok, failed or dropped); `finish_s`
    is set only for requests that completed.
    """

    def __init__(self, workload: Workload):
        n = len(workload)
        self.n = n
        self.arrival_s = np.asarray(workload.arrival_s, dtype=np.float64)
        self.prompt_tokens = np.asarray(workload.prompt_tokens, dtype=np.int64)
        self.output_tokens = np.asarray(workload.output_tokens, dtype=np.int64)
        self.cached_prompt_tokens = np.asarray(workload.cached_prompt_tokens, dtype=np.int64)
        # Lists: indexing a list is several times faster than indexing a numpy array per element.
        self.prompt = self.prompt_tokens.tolist()
        self.output = self.output_tokens.tolist()
        self.cached = np.minimum(self.cached_prompt_tokens, self.prompt_tokens).tolist()
        # Prefix identity, for fleets with their own prefix cache: block hash ids as a ragged
        # (offsets, values) pair and the tokens each id stands for (sim/engine/prefix.py).
        self.hash_ids = workload.meta.get("hash_ids")
        self.hash_block_tokens = int(workload.meta.get("hash_block_tokens", MOONCAKE_BLOCK_TOKENS))
        self.start_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)
        self.status = np.full(n, UNFINISHED, dtype=np.int8)
        self.attempts = np.zeros(n, dtype=np.int16)
        self.served_by = np.zeros(n, dtype=np.int8)
        self.n_terminal = 0
        self.finished: list[int] = []  # settled requests (read by SlotTable's flush)
        # Set-once flags as bytearrays: a byte test is much cheaper than a NaN test on numpy.
        self._has_start = bytearray(n)
        self._has_first_token = bytearray(n)
        self._views()

    def _views(self) -> None:
        """Memoryviews for writing single elements (`w_start_s[i] = now`): the same memory as
        the numpy columns, renewed whenever a column is replaced (SlotTable._grow)."""
        self.w_arrival_s = memoryview(self.arrival_s)
        self.w_start_s = memoryview(self.start_s)
        self.w_first_token_s = memoryview(self.first_token_s)
        self.w_finish_s = memoryview(self.finish_s)
        self.w_end_s = memoryview(self.end_s)
        self.w_status = memoryview(self.status)

    def complete(self, i: int, now: float) -> None:
        self.w_finish_s[i] = now
        self.w_end_s[i] = now
        self.w_status[i] = OK
        self.n_terminal += 1
        self.finished.append(i)

    def fail(self, i: int, now: float, status: int = FAILED) -> None:
        assert status in (FAILED, DROPPED)
        self.w_end_s[i] = now
        self.w_status[i] = status
        self.n_terminal += 1
        self.finished.append(i)

    def first_token(self, i: int, now: float) -> None:
        if not self._has_first_token[i]:  # the first token is only once
            self._has_first_token[i] = 1
            self.w_first_token_s[i] = now

    def started(self, i: int, now: float) -> None:
        if not self._has_start[i]:
            self._has_start[i] = 1
            self.w_start_s[i] = now


class SlotTable(RequestTable):
    """A `RequestTable` for runs too long to hold every request: the engine's request ids are
    slots, reused once a request has settled and been handed to `on_flush` as a `RequestBatch`.

    `assign` gives an arriving request a free slot. When none is free, the settled slots are
    flushed in one vectorised batch if they are at least a quarter of the table, else the table
    doubles (lists and bytearrays grow in place, numpy arrays are replaced: the engine reads them
    through the table's attributes at each use). Memory follows the requests in flight, not the
    requests simulated.
    """

    def __init__(self, on_flush, kv_cap: int | None, capacity: int = 1 << 16):
        self.n = 1 << 62  # unknown until the arrivals run out (`arrivals_done`)
        self.n_terminal = 0
        self.on_flush = on_flush
        self.kv_cap = kv_cap
        self.capacity = 0
        self.prompt, self.output, self.cached = [], [], []
        self._has_start, self._has_first_token = bytearray(), bytearray()
        self.never_fits = bytearray()
        self.request = np.zeros(0, dtype=np.int64)
        self.arrival_s = np.zeros(0)
        self.start_s = np.zeros(0)
        self.first_token_s = np.zeros(0)
        self.finish_s = np.zeros(0)
        self.end_s = np.zeros(0)
        self.status = np.zeros(0, dtype=np.int8)
        self.attempts = np.zeros(0, dtype=np.int16)
        self.served_by = np.zeros(0, dtype=np.int8)
        self.free: list[int] = []
        self.finished: list[int] = []  # settled slots not yet flushed
        self.resume_gen: dict[int, int] | None = None  # the fleet's, cleared for reused slots
        # tokens per prefix id of the workload (set from its first chunk by the runner)
        self.hash_block_tokens = MOONCAKE_BLOCK_TOKENS
        self.attempts_flushed = 0
        self._grow(capacity)

    def _grow(self, extra: int) -> None:
        old = self.capacity
        self.capacity = old + extra
        for lst in (self.prompt, self.output, self.cached):
            lst.extend([0] * extra)
        for flags in (self._has_start, self._has_first_token, self.never_fits):
            flags.extend(bytes(extra))

        def more(a, fill):
            return np.concatenate([a, np.full(extra, fill, dtype=a.dtype)])

        self.request = more(self.request, -1)
        self.arrival_s = more(self.arrival_s, np.nan)
        self.start_s = more(self.start_s, np.nan)
        self.first_token_s = more(self.first_token_s, np.nan)
        self.finish_s = more(self.finish_s, np.nan)
        self.end_s = more(self.end_s, np.nan)
        self.status = more(self.status, UNFINISHED)
        self.attempts = more(self.attempts, 0)
        self.served_by = more(self.served_by, 0)
        self._views()
        self.w_request = memoryview(self.request)
        self.free.extend(range(self.capacity - 1, old - 1, -1))  # popped lowest first

    def assign(self, request: int, arrival: float, prompt: int, output: int, cached: int) -> int:
        if not self.free:
            if len(self.finished) >= self.capacity // 4:
                self.flush(self.finished)
                self.finished = []
            else:
                self._grow(self.capacity)
        s = self.free.pop()
        self.prompt[s] = prompt
        self.output[s] = output
        self.cached[s] = cached if cached < prompt else prompt
        self.w_request[s] = request
        self.w_arrival_s[s] = arrival
        if self.kv_cap is not None and prompt + output > self.kv_cap:
            self.never_fits[s] = 1
        return s

    def hand_over(self, s: int) -> tuple:
        """Slot `s`'s request leaves this table unsettled (a hybrid fleet's overflow, settled
        by its API after the run): its (request, arrival, prompt, output, cached); the slot is
        free again."""
        out = (
            int(self.request[s]),
            float(self.arrival_s[s]),
            self.prompt[s],
            self.output[s],
            self.cached[s],
        )
        self.request[s] = -1
        self.arrival_s[s] = np.nan
        self.never_fits[s] = 0
        self.free.append(s)
        return out

    def batch(self, slots) -> RequestBatch:
        idx = np.asarray(slots, dtype=np.int64)
        get = idx.tolist()
        return RequestBatch(
            request=self.request[idx],
            arrival_s=self.arrival_s[idx],
            start_s=self.start_s[idx],
            first_token_s=self.first_token_s[idx],
            finish_s=self.finish_s[idx],
            end_s=self.end_s[idx],
            prompt_tokens=np.fromiter(map(self.prompt.__getitem__, get), np.int64, len(get)),
            output_tokens=np.fromiter(map(self.output.__getitem__, get), np.int64, len(get)),
            status=self.status[idx],
            attempts=self.attempts[idx],
            served_by=self.served_by[idx],
        )

    def flush(self, slots) -> None:
        """Hand `slots` to `on_flush` and make them free."""
        if not len(slots):
            return
        batch = self.batch(slots)
        self.on_flush(batch)
        self.attempts_flushed += int(batch.attempts.sum())
        idx = np.asarray(slots, dtype=np.int64)
        for a, fill in (
            (self.start_s, np.nan),
            (self.first_token_s, np.nan),
            (self.finish_s, np.nan),
            (self.end_s, np.nan),
            (self.status, UNFINISHED),
            (self.attempts, 0),
            (self.served_by, 0),
        ):
            a[idx] = fill
        for flags in (self._has_start, self._has_first_token, self.never_fits):
            view = np.frombuffer(flags, dtype=np.uint8)
            view[idx] = 0
            del view  # a live view would stop the bytearray from growing
        if self.resume_gen:
            for s in batch_slots(slots):
                self.resume_gen.pop(s, None)
        self.free.extend(sorted(batch_slots(slots), reverse=True))

    def in_flight(self) -> list[int]:
        idle = np.zeros(self.capacity, dtype=bool)
        idle[np.asarray(self.free, dtype=np.int64)] = True
        idle[np.asarray(self.finished, dtype=np.int64)] = True
        return np.flatnonzero(~idle).tolist()


def batch_slots(slots) -> list[int]:
    return slots if isinstance(slots, list) else list(slots)
