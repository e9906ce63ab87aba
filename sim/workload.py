"""The workload every arrival source produces: one row per request, in arrival order.

Traces (sim/traffic/loaders.py) and synthetic generators (sim/traffic/synthetic.py) both return a
`Workload`; the simulator never knows which one it got.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Mooncake's hash_ids are one id per 512-token prompt block (FAST'25 trace README); a workload
# whose meta has hash_ids and no "hash_block_tokens" is taken to use this size.
MOONCAKE_BLOCK_TOKENS = 512


@dataclass(frozen=True)
class Workload:
    """Requests as parallel numpy arrays.

    arrival_s: float64, seconds from the start of the workload, non-decreasing, first >= 0.
    prompt_tokens: int64 >= 1, input tokens of each request.
    output_tokens: int64 >= 1, tokens generated.
    cached_prompt_tokens: int64 in [0, prompt_tokens], prompt tokens that hit a prefix cache
        (e.g. from Mooncake hash_ids); zeros when unknown.
    name: where it came from, for reports ("azure2023_conv.csv", "poisson(rate=5/s)").
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_prompt_tokens: np.ndarray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if len(self.prompt_tokens) != n or len(self.output_tokens) != n:
            raise ValueError("Workload arrays must have the same length")
        if self.cached_prompt_tokens is None:
            object.__setattr__(self, "cached_prompt_tokens", np.zeros(n, dtype=np.int64))
        if n and (np.any(np.diff(self.arrival_s) < 0) or self.arrival_s[0] < 0):
            raise ValueError("Workload arrivals must be non-negative and sorted")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0
