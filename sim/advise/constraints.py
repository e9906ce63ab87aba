"""The `[advise]` table of a scenario: which parts of the market the advisor may search.

One frozen dataclass with defaults and bounds beside each field; `parse_constraints` validates a
TOML table into it with one-line errors naming file and field.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from dataclasses import dataclass
from typing import Any

from sim.errors import InputError

KINDS = ("api", "cloud", "self_hosted", "mix")
PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4")


@dataclass(frozen=True)
class AdviseConstraints:
    """What the advisor may propose. Empty tuples mean "any"."""

    providers: tuple[str, ...] = ()  # API and cloud providers allowed (globs); () = all
    regions: tuple[str, ...] = ()  # cloud regions allowed (globs such as "us-*"); () = all
    terms: tuple[str, ...] = ()  # cloud terms allowed (globs: "on_demand", "reserved_*"); () = all
    precisions: tuple[str, ...] = ()  # () = the scenario's [model] precision only
    kinds: tuple[str, ...] = KINDS  # candidate kinds to consider
    max_gpus: int = 64  # most GPUs any GPU candidate may use at its peak, >= 1
    purchase: bool = True  # consider buying GPUs (self_hosted and owned-base mixes)
    budget_usd_per_month: float | None = None  # candidates above it are reported, not chosen
    shortlist: int = 10  # candidates simulated after the screen, 1..200
    replications: int | None = None  # None = the scenario's replications, 1..100
    max_candidates: int = 20000  # safety cap on candidates generated, >= 1

    def allows_provider(self, provider: str) -> bool:
        return _matches(provider, self.providers)

    def allows_region(self, region: str) -> bool:
        return _matches(region, self.regions)

    def allows_term(self, term: str) -> bool:
        return _matches(term, self.terms)


def _matches(value: str, globs: tuple[str, ...]) -> bool:
    return not globs or any(fnmatch.fnmatchcase(str(value), g) for g in globs)


def parse_constraints(table: Any, source: str) -> AdviseConstraints:
    """Validate the `[advise]` table (None or missing = defaults)."""
    if table is None:
        return AdviseConstraints()

    def fail(key: str, reason: str):
        raise InputError(source, f"advise.{key}" if key else "advise", reason)

    if not isinstance(table, dict):
        fail("", "expected a table")
    fields = {f.name: f for f in dataclasses.fields(AdviseConstraints)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            fail(key, f"unknown key (one of {', '.join(fields)})")
        if key in ("providers", "regions", "terms", "precisions", "kinds"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                fail(key, "expected a list of non-empty strings")
            allowed = {"precisions": PRECISIONS, "kinds": KINDS}.get(key)
            if allowed:
                bad = [v for v in value if v not in allowed]
                if bad:
                    fail(key, f"{bad[0]!r} is not one of {', '.join(allowed)}")
            kwargs[key] = tuple(value)
        elif key == "purchase":
            if not isinstance(value, bool):
                fail(key, "expected true or false")
            kwargs[key] = value
        elif key == "budget_usd_per_month":
            kwargs[key] = _number(value, key, fail, low=0.0, strict=True)
        else:
            low, high = {
                "max_gpus": (1, 4096),
                "shortlist": (1, 200),
                "replications": (1, 100),
                "max_candidates": (1, 10**6),
            }[key]
            number = _number(value, key, fail, low=low, integer=True)
            if number > high:
                fail(key, f"must be <= {high}, got {number}")
            kwargs[key] = number
    return AdviseConstraints(**kwargs)


def _number(value, key, fail, *, low, integer=False, strict=False):
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(key, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        fail(key, "must be finite")
    if integer and not float(value).is_integer():
        fail(key, f"expected an integer, got {value!r}")
    if value < low or (strict and value <= low):
        fail(key, f"must be {'>' if strict else '>='} {low}, got {value!r}")
    return int(value) if integer else float(value)
