"""Per-request state of one fleet simulation, held in preallocated numpy arrays indexed by request.

The engine writes times and statuses here as events happen; `sim.engine.accounting` turns the
arrays into the time series and the `FleetResult` at the end. No Python object per request.
"""

from __future__ import annotations

import numpy as np

from sim.engine.result import DROPPED, FAILED, OK, UNFINISHED
from sim.workload import Workload


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
        self.start_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)
        self.status = np.full(n, UNFINISHED, dtype=np.int8)
        self.attempts = np.zeros(n, dtype=np.int16)
        self.served_by = np.zeros(n, dtype=np.int8)
        self.n_terminal = 0
        # Set-once flags as bytearrays: a byte test is much cheaper than a NaN test on numpy.
        self._has_start = bytearray(n)
        self._has_first_token = bytearray(n)

    def complete(self, i: int, now: float) -> None:
        self.finish_s[i] = now
        self.end_s[i] = now
        self.status[i] = OK
        self.n_terminal += 1

    def fail(self, i: int, now: float, status: int = FAILED) -> None:
        assert status in (FAILED, DROPPED)
        self.end_s[i] = now
        self.status[i] = status
        self.n_terminal += 1

    def first_token(self, i: int, now: float) -> None:
        if not self._has_first_token[i]:  # the first token is only once
            self._has_first_token[i] = 1
            self.first_token_s[i] = now

    def started(self, i: int, now: float) -> None:
        if not self._has_start[i]:
            self._has_start[i] = 1
            self.start_s[i] = now
