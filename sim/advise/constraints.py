"""The `[advise]` table of a scenario: which parts of the market the advisor may search.

One frozen dataclass with defaults and bounds beside each field; `parse_constraints` validates a
TOML table into it with one-line errors naming file and field.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from sim.engine.config import CONFIG, Bool, Int, Num, Str

KINDS = ("api", "cloud", "self_hosted", "mix")
PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4")


Glob = Annotated[Str, Field(min_length=1, max_length=200)]


@dataclass(frozen=True, config=CONFIG)
class AdviseConstraints:
    """`[advise]`: what the advisor may propose. Empty lists mean "any"."""

    providers: Annotated[tuple[Glob, ...], Field(description="API and cloud providers allowed (globs); empty = all")] = ()  # fmt: skip
    regions: Annotated[tuple[Glob, ...], Field(description='cloud regions allowed (globs such as "us-*"); empty = all')] = ()  # fmt: skip
    terms: Annotated[tuple[Glob, ...], Field(description='cloud terms allowed (globs: "on_demand", "reserved_*"); empty = all')] = ()  # fmt: skip
    precisions: Annotated[tuple[Literal["bf16", "fp16", "fp8", "int8", "int4"], ...], Field(description="empty = the scenario's [model] precision only")] = ()  # fmt: skip
    kinds: Annotated[tuple[Literal["api", "cloud", "self_hosted", "mix"], ...], Field(description="candidate kinds to consider")] = KINDS  # fmt: skip
    max_gpus: Annotated[Int, Field(ge=1, le=4096, description="most GPUs any GPU candidate may use at its peak")] = 64  # fmt: skip
    purchase: Annotated[Bool, Field(description="consider buying GPUs (self-hosted and owned-base mixes)")] = True  # fmt: skip
    budget_usd_per_month: Annotated[Num, Field(gt=0, le=1e9, description="candidates above it are reported, not chosen")] | None = None  # fmt: skip
    shortlist: Annotated[Int, Field(ge=1, le=200, description="candidates simulated after the screen")] = 10  # fmt: skip
    replications: Annotated[Int, Field(ge=1, le=100, description="unset = the scenario's replications")] | None = None  # fmt: skip
    max_candidates: Annotated[Int, Field(ge=1, le=1_000_000, description="safety cap on candidates generated")] = 20000  # fmt: skip

    @field_validator("providers", "regions", "terms", "precisions", "kinds", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def allows_provider(self, provider: str) -> bool:
        return _matches(provider, self.providers)

    def allows_region(self, region: str) -> bool:
        return _matches(region, self.regions)

    def allows_term(self, term: str) -> bool:
        return _matches(term, self.terms)


def _matches(value: str, globs: tuple[str, ...]) -> bool:
    return not globs or any(fnmatch.fnmatchcase(str(value), g) for g in globs)


def parse_constraints(table: Any, source: str) -> AdviseConstraints:
    """Validate an `[advise]` table alone (None or missing = defaults), with the schema's errors."""
    if table is None:
        return AdviseConstraints()
    from sim.scenario.load import parse_table

    return parse_table(AdviseConstraints, "advise", table, source)
