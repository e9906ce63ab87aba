"""The `[workload]` table of a scenario as one validated record: a recorded `trace` or a synthetic
`generator`, token lengths for generators, then optional transforms (docs/workload.md).

Part of the one scenario schema (sim/scenario/schema.py). The request budget is checked here from
rates and durations, before anything is allocated.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from sim.engine.config import CONFIG, MAX_SECONDS, Int, Num, Str
from sim.traffic.limits import MAX_GAMMA_CV, MAX_REQUESTS, MAX_TOKENS_PER_REQUEST

GENERATORS = ("poisson", "gamma", "diurnal", "mmpp", "conversations")
# Requests one replication may hold and tokens per request: one set of limits (limits.py),
# checked here from rates before drawing anything.
MAX_TOKENS = MAX_TOKENS_PER_REQUEST

GENERATOR_KEYS = {
    "poisson": ("rate_per_s", "duration_s"),
    "gamma": ("rate_per_s", "duration_s", "cv"),
    "diurnal": ("rate_per_s", "duration_s", "peak_to_trough", "peak_hour", "period_s"),
    "mmpp": ("rates_per_s", "dwell_s", "duration_s"),
    "conversations": (
        "rate_per_s", "duration_s", "turns", "think_time_s", "user_tokens",
        "system_prompt_tokens", "prefix_block_tokens", "max_context_tokens",
    ),
}  # fmt: skip
# Keys a generator may leave out (defaults in sim/traffic/config.py).
OPTIONAL_KEYS = ("peak_to_trough", "peak_hour", "period_s", "system_prompt_tokens", "prefix_block_tokens", "max_context_tokens")  # fmt: skip
TRACE_KEYS = ("trace", "format", "model_filter", "columns")
LENGTH_KEYS = ("prompt_tokens", "output_tokens", "lengths_from")
TRANSFORM_KEYS = ("window_s", "rate_scale", "time_stretch", "tile_to_s", "sample_frac", "max_requests")  # fmt: skip
TILE_KEYS = ("peak_to_trough", "peak_hour")

# Below one request per 11.6 days, or spans under a millisecond, a generator describes no traffic.
Rate = Annotated[Num, Field(ge=1e-6, le=1e6, description="requests per second")]
Duration = Annotated[Num, Field(ge=1e-3, le=MAX_SECONDS, description="seconds")]


@dataclass(frozen=True, config=CONFIG)
class LengthSpec:
    """A token-length distribution: `{ dist = "lognormal", median = 1020, sigma = 0.8, max = 8192 }`
    or `{ dist = "const", value = 512 }` (`"fixed"` is accepted as another name for `"const"`)."""

    dist: Literal["lognormal", "const", "fixed"] = "lognormal"
    median: Annotated[Num, Field(ge=1, le=MAX_TOKENS, description="lognormal: median tokens")] | None = None  # fmt: skip
    sigma: Annotated[Num, Field(ge=0, le=5, description="lognormal: sigma of log tokens")] | None = None  # fmt: skip
    max: Annotated[Num, Field(ge=1, le=MAX_TOKENS, description="lognormal: cap (default 1,000,000)")] | None = None  # fmt: skip
    value: Annotated[Num, Field(ge=1, le=MAX_TOKENS, description="const: every request's tokens")] | None = None  # fmt: skip

    @model_validator(mode="after")
    def _parameters(self) -> LengthSpec:
        if self.dist == "lognormal":
            if self.value is not None:
                raise ValueError("value: not a parameter of dist = 'lognormal' (it takes median, sigma, max)")  # fmt: skip
            for name in ("median", "sigma"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for dist = 'lognormal'")
            if self.max is not None and self.max < self.median:
                raise ValueError(f"max: must be >= median ({self.median:g}), got {self.max:g}")
        else:
            for name in ("median", "sigma", "max"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not a parameter of dist = {self.dist!r} (it takes value)")  # fmt: skip
            if self.value is None:
                raise ValueError(f"value: required for dist = {self.dist!r}")
        return self


@dataclass(frozen=True, config=CONFIG)
class WorkloadSpec:
    """Exactly one of `trace` or `generator`, then transforms applied in a fixed order:
    window_s, rate_scale, time_stretch, tile_to_s, sample_frac, max_requests."""

    trace: Annotated[Str, Field(min_length=1, description='a file, or "builtin:NAME"')] | None = None  # fmt: skip
    format: Literal["auto", "azure2023", "azure2024", "burstgpt", "mooncake", "generic_csv", "generic_parquet", "generic_jsonl"] | None = None  # fmt: skip
    model_filter: Annotated[Str, Field(min_length=1, description="keep only this model's rows (traces that carry a model column)")] | None = None  # fmt: skip
    columns: Annotated[dict[Str, Str], Field(description="generic formats: which column holds timestamp, prompt_tokens, output_tokens (and timestamp_unit; optional conversation, a conversation id whose rows extend each other as turns: prefix identity for engine.prefix_cache)")] | None = None  # fmt: skip
    generator: Annotated[Literal["poisson", "gamma", "diurnal", "mmpp", "conversations"], Field(description='a synthetic arrival process; "conversations": multi-turn conversations whose turns extend their context (prefix identity for engine.prefix_cache)')] | None = None  # fmt: skip
    rate_per_s: Annotated[Rate, Field(description="generators: mean arrival rate")] | None = None  # fmt: skip
    duration_s: Annotated[Duration, Field(description="generators: length of the traffic")] | None = None  # fmt: skip
    cv: Annotated[Num, Field(ge=0.01, le=MAX_GAMMA_CV, description="gamma: coefficient of variation of gaps (1 = Poisson; below 0.01 use a constant rate)")] | None = None  # fmt: skip
    peak_to_trough: Annotated[Num, Field(ge=1, le=1000, description="diurnal / tile_to_s: peak rate over trough rate (default 3)")] | None = None  # fmt: skip
    peak_hour: Annotated[Num, Field(ge=0, lt=24, description="diurnal / tile_to_s: hour of the peak (default 14)")] | None = None  # fmt: skip
    period_s: Annotated[Duration, Field(description="diurnal: period of the cycle (default 86400)")] | None = None  # fmt: skip
    rates_per_s: Annotated[list[Annotated[Num, Field(ge=0, le=1e6)]], Field(min_length=1, max_length=1000, description="mmpp: the rate of each state")] | None = None  # fmt: skip
    dwell_s: Annotated[list[Duration], Field(min_length=1, max_length=1000, description="mmpp: mean time in each state")] | None = None  # fmt: skip
    turns: Annotated[LengthSpec, Field(description="conversations: turns per conversation")] | None = None  # fmt: skip
    think_time_s: Annotated[Num, Field(ge=0, le=MAX_SECONDS, description="conversations: mean (exponential) gap between a turn's arrival and the next; should exceed a turn's response time")] | None = None  # fmt: skip
    user_tokens: Annotated[LengthSpec, Field(description="conversations: new user tokens each turn after the first adds to the context")] | None = None  # fmt: skip
    system_prompt_tokens: Annotated[Int, Field(ge=0, le=MAX_TOKENS, description="conversations: a system prompt every conversation starts with, shared by all (default 0)")] | None = None  # fmt: skip
    prefix_block_tokens: Annotated[Int, Field(ge=1, le=4096, description="conversations: tokens per prefix block hash the generator writes (default 16, vLLM's block)")] | None = None  # fmt: skip
    max_context_tokens: Annotated[Int, Field(ge=2, le=MAX_TOKENS, description="conversations: a conversation ends before a turn's prompt + output would pass this (default 32768)")] | None = None  # fmt: skip
    prompt_tokens: Annotated[LengthSpec, Field(description="generators: prompt length distribution (conversations: the first turn's user tokens, after the system prompt)")] | None = None  # fmt: skip
    output_tokens: Annotated[LengthSpec, Field(description="generators: output length distribution")] | None = None  # fmt: skip
    lengths_from: Annotated[Str, Field(min_length=1, description="generators: resample (prompt, output) pairs from this trace")] | None = None  # fmt: skip
    window_s: Annotated[list[Annotated[Num, Field(ge=0, le=MAX_SECONDS)]], Field(min_length=2, max_length=2, description="[start, end]: keep this slice of the trace")] | None = None  # fmt: skip
    rate_scale: Annotated[Num, Field(gt=0, le=1000, description="thin or duplicate arrivals: this times the rate")] | None = None  # fmt: skip
    time_stretch: Annotated[Num, Field(gt=0, le=1000, description="multiply every timestamp (2 = half the rate, twice as long)")] | None = None  # fmt: skip
    tile_to_s: Annotated[Duration, Field(description="repeat the trace to this length under a diurnal envelope")] | None = None  # fmt: skip
    sample_frac: Annotated[Num, Field(gt=0, le=1, description="keep this fraction of requests at random")] | None = None  # fmt: skip
    max_requests: Annotated[Int, Field(ge=1, le=MAX_REQUESTS, description="keep the first N requests")] | None = None  # fmt: skip

    def given(self) -> list[str]:
        return [name for name in self.__dataclass_fields__ if getattr(self, name) is not None]

    @model_validator(mode="after")
    def _combination(self) -> WorkloadSpec:
        given = self.given()
        if (self.trace is None) == (self.generator is None):
            raise ValueError("give exactly one of `trace` or `generator`")
        allowed = set(TRANSFORM_KEYS)
        if self.tile_to_s is not None:
            allowed |= set(TILE_KEYS)
        if self.trace is not None:
            allowed |= set(TRACE_KEYS)
            what = "a `trace`"
        else:
            allowed |= {"generator", *GENERATOR_KEYS[self.generator], *LENGTH_KEYS}
            if self.generator == "conversations":
                allowed.discard("lengths_from")  # turns need separate first and later lengths
            what = f"generator {self.generator!r}"
        for key in given:
            if key not in allowed:
                raise ValueError(f"{key}: does not apply to {what}")
        if self.generator is not None:
            self._check_generator()
        if self.window_s is not None and not self.window_s[0] < self.window_s[1]:
            raise ValueError(f"window_s: must be [start, end] with start < end, got {self.window_s}")  # fmt: skip
        return self

    def _check_generator(self) -> None:
        for key in GENERATOR_KEYS[self.generator]:
            optional = key in OPTIONAL_KEYS
            if getattr(self, key) is None and not optional:
                raise ValueError(f"{key}: required for generator {self.generator!r}")
        if self.lengths_from is not None:
            for key in ("prompt_tokens", "output_tokens"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: give either lengths_from or prompt_tokens/output_tokens")  # fmt: skip
        else:
            for key in ("prompt_tokens", "output_tokens"):
                if getattr(self, key) is None:
                    raise ValueError(f'{key}: required for a generator (or set lengths_from = "builtin:azure2023_conv")')  # fmt: skip
        if self.generator == "mmpp" and len(self.dwell_s) != len(self.rates_per_s):
            raise ValueError(f"dwell_s: must have {len(self.rates_per_s)} entries, got {len(self.dwell_s)}")  # fmt: skip
        expected = self.expected_requests()
        if expected > MAX_REQUESTS:
            raise ValueError(
                f"{'rate_per_s' if self.rate_per_s is not None else 'rates_per_s'}: about "
                f"{expected:.3g} requests per replication, over the budget of {MAX_REQUESTS:,}"
            )

    def expected_requests(self, trace_requests: int | None = None) -> float:
        """Requests a replication will hold, from rates and durations (before any draw)."""
        if self.generator is not None:
            rate = self.rate_per_s if self.rate_per_s is not None else max(self.rates_per_s)
            if self.generator == "diurnal":
                rate *= 2 * (self.peak_to_trough or 3.0) / (1 + (self.peak_to_trough or 3.0))
            n = rate * self.duration_s
            if self.generator == "conversations":
                t = self.turns
                mean = t.value if t.value is not None else t.median * math.exp(t.sigma**2 / 2)
                n *= min(mean, t.max or math.inf)
        else:
            n = float(trace_requests or 0)
        if self.rate_scale is not None:
            n *= self.rate_scale
        return n
