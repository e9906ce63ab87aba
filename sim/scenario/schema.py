"""The one schema of a scenario file: every table, key, choice, bound and default in one place.

`ScenarioFile` is what a TOML scenario must look like; pydantic validates it once, at load, before
any price lookup, and `sim scenario schema` prints it as JSON Schema for editors. The fleet
classes come from sim/engine/config.py and the workload from sim/traffic/spec.py, so the engine,
the traffic builder and this file read the same typed records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, field_validator, model_validator
from pydantic.dataclasses import dataclass

from sim.advise.constraints import AdviseConstraints
from sim.engine.config import (
    CONFIG,
    MAX_SECONDS,
    ApiFleetConfig,
    CloudFleetConfig,
    Fraction,
    Int,
    Name,
    Num,
    Precision,
    SelfHostedFleetConfig,
    Str,
)
from sim.traffic.spec import WorkloadSpec
from sim.workload import MOONCAKE_BLOCK_TOKENS

EARLIEST_PRICE_DATE = dt.date(2015, 1, 1)  # before any LLM API or the oldest price we hold
SLO_METRICS = ("ttft", "e2e", "tpot")
SLO_QUANTILES = ("p50", "p90", "p95", "p99")
SLO_KEYS = tuple(f"{m}_{q}_s" for m in SLO_METRICS for q in SLO_QUANTILES)
DEFAULT_MIN_SUCCESS_RATE = 0.99

Fleet = Annotated[
    ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig, Field(discriminator="kind")
]


@dataclass(frozen=True, config=CONFIG)
class ScenarioHead:
    """`[scenario]`: identity, randomness and the time grid of a run."""

    name: Annotated[Name, Field(description="names the run directory; default: the file name")] | None = None  # fmt: skip
    seed: Annotated[Int, Field(ge=0, lt=2**63, description="numpy SeedSequence entropy")] = 0
    replications: Annotated[Int, Field(ge=1, le=1000, description="independent runs with their own random streams")] = 1  # fmt: skip
    price_as_of: Annotated[
        Str | dt.date | dt.datetime,
        Field(description='"latest" or a date (2025-06-01): which prices are in force'),
    ] = "latest"
    price_max_age_days: Annotated[Num, Field(ge=0, le=3650, description="warn about prices older than this")] = 30.0  # fmt: skip
    price_source_priority: Annotated[tuple[Annotated[Str, Field(min_length=1, max_length=64)], ...], Field(max_length=50, description="API price sources in order of trust when observations tie (docs/pricing.md); unset = litellm, openrouter, llm_prices")] | None = None  # fmt: skip
    window_s: Annotated[Num, Field(ge=0.001, le=MAX_SECONDS, description="width of the time-series windows")] = 60.0  # fmt: skip
    horizon_s: Annotated[Num, Field(gt=0, le=MAX_SECONDS, description="stop the simulation here (default: when all work is done)")] | None = None  # fmt: skip
    description: Annotated[Str, Field(max_length=10_000, description="what the scenario tests")] = ""  # fmt: skip
    engine_path: Annotated[Literal["auto", "exact", "streaming"], Field(description='"exact": every request kept in memory, exact percentiles; "streaming": the workload read in chunks and aggregated per window as the run goes, memory flat in the number of requests, latency percentiles from sketches within 1% (docs/scale.md); "auto": streaming when a replication has over 2,000,000 requests and every fleet can stream, else exact')] = "auto"  # fmt: skip

    @field_validator("price_as_of", mode="after")
    @classmethod
    def _as_of(cls, value: Any) -> str:
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, str):
            if value == "latest":
                return value
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f'expected a date (2025-06-01) or "latest", got str {value[:200]!r}'
                ) from None
        today = dt.datetime.now(dt.UTC).date()
        if not EARLIEST_PRICE_DATE <= value <= today:
            raise ValueError(f"must lie between {EARLIEST_PRICE_DATE} and today ({today}), got {value}")  # fmt: skip
        return value.isoformat()


@dataclass(frozen=True, config=CONFIG)
class ModelSpec:
    """`[model]`: the served model, a name from the perf catalog or a config file, and precision."""

    name: Annotated[Str, Field(min_length=1, max_length=200, description="catalog name (sim perf --list)")]  # fmt: skip
    precision: Precision = "bf16"
    config: Annotated[Str, Field(min_length=1, description="path to a model config file, relative to the scenario")] | None = None  # fmt: skip
    kv_dtype: Annotated[
        Literal["bf16", "fp16", "fp8", "int8"] | None,
        Field(
            description="KV-cache dtype when it differs from the weights' (FP8 checkpoints in vLLM keep a BF16 KV cache by default); unset = the precision's own"
        ),
    ] = None
    context_overflow: Annotated[
        Literal["reject", "truncate"],
        Field(
            description="requests longer than the model's context: an error, or prompts cut to fit"
        ),
    ] = "reject"


SloTarget = Annotated[Num, Field(gt=0, le=1e7)] | None


@dataclass(frozen=True, config=CONFIG)
class SloSpec:
    """`[slo]`: latency targets in seconds (unset = no target) and the least success rate."""

    ttft_p50_s: SloTarget = None
    ttft_p90_s: SloTarget = None
    ttft_p95_s: SloTarget = None
    ttft_p99_s: SloTarget = None
    e2e_p50_s: SloTarget = None
    e2e_p90_s: SloTarget = None
    e2e_p95_s: SloTarget = None
    e2e_p99_s: SloTarget = None
    tpot_p50_s: SloTarget = None
    tpot_p90_s: SloTarget = None
    tpot_p95_s: SloTarget = None
    tpot_p99_s: SloTarget = None
    min_success_rate: Fraction = DEFAULT_MIN_SUCCESS_RATE


@dataclass(frozen=True, config=CONFIG)
class ScenarioFile:
    """A whole scenario file. `fleet` may be empty for `sim advise`; `sim run` needs one."""

    workload: WorkloadSpec
    model: ModelSpec
    scenario: ScenarioHead = field(default_factory=ScenarioHead)
    slo: SloSpec = field(default_factory=SloSpec)
    fleet: Annotated[list[Fleet], Field(max_length=100)] = field(default_factory=list)
    advise: AdviseConstraints = field(default_factory=AdviseConstraints)

    @model_validator(mode="after")
    def _prefix_identity(self) -> ScenarioFile:
        """A per-replica prefix cache or provider prompt caching needs block hash ids in the
        workload: refused here where the workload visibly has none (a file of unknown format
        is checked when the run builds its workload)."""
        w = self.workload
        if w.generator is not None:
            lacking = w.generator != "conversations"
        else:
            fmt = w.format or "auto"
            lacking = (
                fmt in ("azure2023", "azure2024", "burstgpt")
                or w.trace.startswith("builtin:")
                or (fmt.startswith("generic_") and "conversation" not in (w.columns or {}))
            )
        if not lacking:
            self._block_sizes()
            return self
        for k, f in enumerate(self.fleet):
            if isinstance(f, ApiFleetConfig):
                key = "prompt_cache" if f.prompt_cache == "provider" else None
            else:
                key = "engine.prefix_cache" if f.engine.prefix_cache else None
            if key is not None:
                raise ValueError(
                    f"fleet.{k}.{key}: the workload has no prefix identity (use a Mooncake "
                    'trace, generator = "conversations" or a trace\'s conversation column; '
                    "docs/prefix_cache.md)"
                )
        return self

    def _block_sizes(self) -> None:
        """engine.block_tokens and the workload's block ids: one a multiple of the other."""
        w = self.workload
        if w.generator == "conversations":
            source = w.prefix_block_tokens or 16
        elif w.format == "mooncake":
            source = MOONCAKE_BLOCK_TOKENS
        else:
            return
        for k, f in enumerate(self.fleet):
            if isinstance(f, ApiFleetConfig) or not f.engine.prefix_cache:
                continue
            b = f.engine.block_tokens
            if b % source and source % b:
                raise ValueError(
                    f"fleet.{k}.engine.block_tokens: {b} and the workload's prefix blocks of "
                    f"{source} tokens: one must be a multiple of the other"
                )


SCENARIO_ADAPTER = TypeAdapter(ScenarioFile)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (TOML maps onto it key for key)."""
    schema = SCENARIO_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "infercost scenario"
    return schema
