"""Fill the prices a scenario leaves unset from the warehouse, as of the scenario's price date,
and record where each one came from. A price that is not there is an error naming the field:
never a guess. The one choice rule between candidate prices lives here (docs/pricing.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import statistics
from typing import Any

from pydantic import ValidationError

from sim.engine.config import (
    ApiFleetConfig,
    CloudFleetConfig,
    SelfHostedFleetConfig,
    is_disaggregated,
    serving_groups,
)
from sim.errors import InputError
from sim.scenario import Scenario


def needs_prices(scenario: Scenario) -> bool:
    """True when some fleet still has a price left as None."""
    return any(_missing(f) for f in scenario.fleets)


def _missing(f: Any) -> bool:
    if is_disaggregated(f):
        return any(_missing(pool) for _, pool in serving_groups(f))
    if isinstance(f, ApiFleetConfig):
        return f.price_usd_per_mtok_input is None or f.price_usd_per_mtok_output is None
    if isinstance(f, CloudFleetConfig):
        return (
            f.price_usd_per_hour is None
            or f.gpus_per_instance is None
            or (f.fallback_on_demand and f.fallback_price_usd_per_hour is None)
        )
    if isinstance(f, SelfHostedFleetConfig):
        return f.gpu_price_usd is None or (f.overflow is not None and _missing(f.overflow))
    return False


def as_of_arg(price_as_of: str) -> dt.datetime | None:
    """The warehouse's `as_of`: None means the latest prices."""
    if price_as_of == "latest":
        return None
    # End of the day, so a price published on that date counts.
    return dt.datetime.combine(dt.date.fromisoformat(price_as_of), dt.time(23, 59, 59))


# Between API prices observed on the same day that also started on the same day, the first
# source here wins. LiteLLM tracks the most providers and is refreshed upstream daily; OpenRouter
# is a reseller's own list; llm-prices is curated by hand and often later. A scenario (or the
# caller) may pass its own order; sources not named come after, by name.
DEFAULT_SOURCE_PRIORITY = ("litellm", "openrouter", "llm_prices")
DEFAULT_MAX_AGE_DAYS = 30

# When several regions tie on observation date and price, a user who did not pin a region gets
# a US one first (the region most buyers mean, and the providers' own default), then Europe,
# then the rest by name, never whichever region sorts first alphabetically. Patterns are matched
# against the lower-cased region; "" (a global price) ranks with the US.
REGION_PREFERENCE = (
    ("", "us-*", "us", "*-us-*", "eastus*", "westus*", "centralus*", "northcentralus*",
     "southcentralus*", "westcentralus*"),
    ("eu-*", "europe-*", "*europe*", "eu", "uk*", "france*", "germany*", "sweden*", "norway*",
     "switzerland*", "poland*", "italy*", "spain*", "nl", "se", "no", "cz", "ro", "is"),
)  # fmt: skip


def region_rank(region: str) -> int:
    """0 for US (and global) regions, 1 for Europe, 2 for the rest (see REGION_PREFERENCE)."""
    name = (region or "").lower()
    for rank, patterns in enumerate(REGION_PREFERENCE):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return rank
    return len(REGION_PREFERENCE)


def resolve_prices(
    scenario: Scenario,
    warehouse: Any = None,
    *,
    source_priority: tuple[str, ...] | None = None,
    max_age_days: float | None = None,
) -> Scenario:
    """A copy of `scenario` with every price a float and `prices` holding each one's provenance.

    `warehouse` is a `warehouse.Warehouse` (opened read-only on the default database when None and
    some price is missing). Explicit prices are kept and recorded as `source = "scenario"`. Each
    warehouse price's provenance lists every alternative that matched and why it lost, and the
    `warnings` about prices older than `max_age_days` (default: the scenario's
    `price_max_age_days`, else 30).
    """
    if warehouse is None and needs_prices(scenario):
        warehouse = _open_warehouse(scenario)
    if source_priority is None:
        source_priority = tuple(
            getattr(scenario, "price_source_priority", None) or DEFAULT_SOURCE_PRIORITY
        )
    if max_age_days is None:
        max_age_days = getattr(scenario, "price_max_age_days", None) or DEFAULT_MAX_AGE_DAYS
    resolver = _Resolver(scenario, warehouse, tuple(source_priority))
    fleets = []
    prices: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(scenario.fleets):
        try:
            fleet, provenance = resolver.fleet(f, f"fleet[{i}]")
        except ValidationError as exc:
            # A stored price the schema's bounds refuse (the fleet is validated again with it).
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"]) or "price"
            raise InputError(
                str(scenario.path),
                f"fleet[{i}].{field}",
                f"the warehouse's value {err.get('input')!r} is refused: {err['msg']}",
            ) from None
        fleets.append(fleet)
        warnings = _stale_lines(f.name, provenance, max_age_days)
        if warnings:
            provenance["warnings"] = warnings
        prices[f.name] = provenance
    return dataclasses.replace(scenario, fleets=tuple(fleets), prices=prices)


def stale_price_warnings(
    scenario: Scenario, max_age_days: float = DEFAULT_MAX_AGE_DAYS
) -> list[str]:
    """One `warning:` line per warehouse price the resolved `scenario` uses that was last seen
    more than `max_age_days` before the price date, naming fleet, source, SKU and age in days."""
    lines: list[str] = []
    for name, provenance in (getattr(scenario, "prices", None) or {}).items():
        lines += _stale_lines(name, provenance, max_age_days)
    return lines


def _stale_lines(fleet: str, provenance: dict, max_age_days: float) -> list[str]:
    lines = []
    for key in ("prefill", "decode"):  # a disaggregated fleet: each pool's own price
        if isinstance(provenance.get(key), dict):
            lines += _stale_lines(f"{fleet}.{key}", provenance[key], max_age_days)
    for prov in (provenance, provenance.get("fallback"), provenance.get("overflow")):
        if not isinstance(prov, dict):
            continue
        age = prov.get("age_days")
        if age is not None and age > max_age_days:
            lines.append(
                f"warning: fleet {fleet}: {prov.get('source')} price of {prov.get('sku')} "
                f"is {age} days old (last seen {prov.get('last_seen')}, limit {max_age_days:g} "
                "days)"
            )
    return lines


def _open_warehouse(scenario: Scenario):
    try:
        from warehouse import Warehouse
    except ImportError as exc:
        raise InputError(
            str(scenario.path),
            "fleet",
            f"prices are not set and the warehouse cannot be loaded ({exc})",
        ) from None
    return Warehouse(read_only=True)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if value != value else value


def _stamp(value: Any) -> str | None:
    return (
        value.isoformat()
        if isinstance(value, dt.date | dt.datetime)
        else (None if value is None else str(value))
    )


def _day(value: Any) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


class _Resolver:
    def __init__(self, scenario: Scenario, warehouse: Any, source_priority: tuple[str, ...]):
        self.scenario = scenario
        self.wh = warehouse
        self.as_of = as_of_arg(scenario.price_as_of)
        self.source = str(scenario.path)
        self.priority = source_priority

    def source_rank(self, source: str) -> tuple[int, str]:
        s = str(source)
        return (self.priority.index(s) if s in self.priority else len(self.priority), s)

    def seen_day(self, row: dict) -> dt.date | None:
        """The day the source last vouched for the price, no later than the price date."""
        seen = row.get("last_seen")
        if seen is not None and self.as_of is not None:
            seen = min(seen, self.as_of)
        return _day(seen)

    def fail(self, field: str, reason: str):
        raise InputError(self.source, field, reason)

    def rows(self, frame: Any) -> list[dict]:
        if frame is None:
            return []
        return [r for r in frame.to_dicts() if str(r.get("currency", "USD") or "USD") == "USD"]

    def fleet(self, f: Any, where: str) -> tuple[Any, dict]:
        if is_disaggregated(f):
            return self.pools(f, where)
        if isinstance(f, ApiFleetConfig):
            return self.api(f, where)
        if isinstance(f, CloudFleetConfig):
            return self.cloud(f, where)
        return self.self_hosted(f, where)

    def pools(self, f: Any, where: str) -> tuple[Any, dict]:
        """A disaggregated fleet: each pool priced as a fleet of its own; the resolved figures
        are written into the pool's table."""
        changes: dict[str, Any] = {}
        prov: dict[str, Any] = {"source": "per pool (prefill, decode)"}
        for which, pool in serving_groups(f):
            resolved, prov[which] = self.fleet(pool, f"{where}.{which}")
            keys = ("price_usd_per_hour", "gpus_per_instance", "fallback_price_usd_per_hour")
            if isinstance(pool, SelfHostedFleetConfig):
                keys = ("gpu_price_usd",)
            own = getattr(f, which)
            changes[which] = dataclasses.replace(
                own, **{k: getattr(resolved, k) for k in keys if hasattr(own, k)}
            )
        return dataclasses.replace(f, **changes), prov

    def api(self, f: ApiFleetConfig, where: str) -> tuple[ApiFleetConfig, dict]:
        if f.price_usd_per_mtok_input is not None and f.price_usd_per_mtok_output is not None:
            cached = f.price_usd_per_mtok_cached_input
            note = None
            if cached is None:
                cached, note = f.price_usd_per_mtok_input, "cached input priced as input (not set)"
            prov = {
                "source": "scenario",
                "usd_per_mtok_input": f.price_usd_per_mtok_input,
                "usd_per_mtok_output": f.price_usd_per_mtok_output,
                "usd_per_mtok_cached_input": cached,
                "note": note,
            }
            return dataclasses.replace(f, price_usd_per_mtok_cached_input=cached), prov
        rows = self.rows(self.wh.api_prices(self.as_of, provider=f.provider, model=f.model))
        rows = [
            r
            for r in rows
            if _num(r.get("input_per_mtok")) is not None
            and _num(r.get("output_per_mtok")) is not None
        ]
        if not rows:
            self.fail(
                f"{where}.model",
                f"no token price for {f.provider} {f.model} as of {self.scenario.price_as_of}; "
                "set price_usd_per_mtok_input and price_usd_per_mtok_output",
            )
        row, alternatives = self.choose_api(rows, f.allow_free)
        if row is None:
            free = rows[0]
            self.fail(
                f"{where}.allow_free",
                f"{f.provider} {f.model} is priced 0 by {free.get('source')} (a free tier); set "
                "allow_free = true to cost it at 0, or set price_usd_per_mtok_input and "
                "price_usd_per_mtok_output",
            )
        inp = _num(row["input_per_mtok"])
        out = _num(row["output_per_mtok"])
        cached = f.price_usd_per_mtok_cached_input
        note = None
        if cached is None:
            cached = _num(row.get("cached_input_per_mtok"))
            if cached is None:
                cached, note = inp, "source has no cached-input price: cached input priced as input"
        prov = {
            "source": row.get("source"),
            "provider": f.provider,
            "sku": row.get("model"),
            "region": row.get("region") or "",
            "valid_from": _stamp(row.get("valid_from")),
            "last_seen": _stamp(row.get("last_seen")),
            "age_days": row.get("age_days"),
            "usd_per_mtok_input": inp,
            "usd_per_mtok_output": out,
            "usd_per_mtok_cached_input": cached,
            "note": note,
            # The note matters only to traffic with cached prompt tokens (RunSummary.notes).
            "note_when": "cached_tokens" if note else None,
            "rule": "newest observation, then latest price start, then source priority "
            "(docs/pricing.md)",
            "alternatives": alternatives,
        }
        write = f.price_usd_per_mtok_cache_write
        if write is None:
            write = _num(row.get("cache_write_per_mtok"))
        prov["usd_per_mtok_cache_write"] = write
        resolved = dataclasses.replace(
            f,
            price_usd_per_mtok_input=inp,
            price_usd_per_mtok_output=out,
            price_usd_per_mtok_cached_input=cached,
            price_usd_per_mtok_cache_write=write,
        )
        return resolved, prov

    def choose_api(self, rows: list[dict], allow_free: bool) -> tuple[dict | None, list[dict]]:
        """The API price the choice rule picks and every other candidate with why it lost.

        Rule: a free (0) price only with allow_free; then the latest day the source still
        showed the price; then the price that started latest (a newer observation replaces an
        older one); then source priority; then a global price over a regional one, US first."""

        def free(r: dict) -> bool:
            return not (_num(r["input_per_mtok"]) > 0 and _num(r["output_per_mtok"]) > 0)

        usable = [r for r in rows if allow_free or not free(r)]
        criteria = [
            ("last seen earlier", lambda r: _neg_day(self.seen_day(r))),
            ("a newer observation replaced it", lambda r: _neg_day(_day(r.get("valid_from")))),
            ("lower source priority", lambda r: self.source_rank(r.get("source"))),
            ("regional (a global price ranks first)", lambda r: (r.get("region") or "") != ""),
            ("less preferred region", lambda r: (region_rank(r.get("region")), r.get("region"))),
        ]
        winner, lost = _rank(usable, criteria)
        alternatives = [
            _api_alternative(r, "free price (0) refused: allow_free = false")
            for r in rows
            if r not in usable
        ] + [_api_alternative(r, why) for r, why in lost]
        return winner, alternatives

    def _offer(self, f: CloudFleetConfig, term: str, where: str, hint: str) -> tuple[dict, list]:
        """The GPU offer the choice rule picks for `f` and `term`, and the alternatives.

        Pinned by the scenario: provider, instance, term and region (a glob such as `us-*`
        matches with fnmatch). Quarantined and zero prices are never candidates. Among the rest:
        the latest day the source still showed the offer, then the lowest price per instance-hour,
        then the preferred region (US, then Europe, then the rest), then source priority."""
        pattern = f.region or ""
        glob = any(ch in pattern for ch in "*?[")
        rows = self.rows(
            self.wh.gpu_offers(
                self.as_of,
                provider=f.provider,
                sku=f.instance,
                region=None if glob or not pattern else pattern,
                term=term,
                usable=True,
            )
        )
        if glob:
            rows = [r for r in rows if fnmatch.fnmatchcase(r.get("region") or "", pattern)]
        priced = [r for r in rows if (_num(r.get("usd_per_hour")) or 0) > 0]
        if not priced:
            region = f" in {f.region}" if f.region else ""
            self.fail(
                where,
                f"no price for {f.provider} {f.instance} {term}{region} as of "
                f"{self.scenario.price_as_of}; set {hint}",
            )
        criteria = [
            ("last seen earlier", lambda r: _neg_day(self.seen_day(r))),
            ("higher price", lambda r: _num(r["usd_per_hour"])),
            ("less preferred region", lambda r: region_rank(r.get("region"))),
            ("lower source priority", lambda r: self.source_rank(r.get("source"))),
            ("region name order", lambda r: str(r.get("region") or "")),
        ]
        winner, lost = _rank(priced, criteria)
        alternatives = [
            _offer_alternative(r, "price 0 is never a cost") for r in rows if r not in priced
        ]
        alternatives += [_offer_alternative(r, why) for r, why in lost]
        return winner, alternatives

    def cloud(self, f: CloudFleetConfig, where: str) -> tuple[CloudFleetConfig, dict]:
        changes: dict[str, Any] = {}
        prov: dict[str, Any] = {"source": "scenario", "usd_per_hour": f.price_usd_per_hour}
        if f.price_usd_per_hour is None or f.gpus_per_instance is None:
            if f.price_usd_per_hour is None:
                row, alternatives = self._offer(
                    f, f.term, f"{where}.instance", "price_usd_per_hour"
                )
            else:
                row, alternatives = self._offer(
                    f, f.term, f"{where}.gpus_per_instance", "gpus_per_instance"
                )
            gpus = _num(row.get("gpu_count"))
            if f.price_usd_per_hour is None:
                changes["price_usd_per_hour"] = _num(row["usd_per_hour"])
                prov = {
                    **_offer_provenance(row),
                    "provider": f.provider,
                    "term": f.term,
                    "gpu_model": row.get("gpu_model"),
                    "gpu_count": gpus,
                    "rule": "pins, then newest observation, then lowest price (docs/pricing.md)",
                    "alternatives": alternatives,
                }
            if f.gpus_per_instance is None:
                if gpus is None or gpus < 1 or not float(gpus).is_integer():
                    self.fail(
                        f"{where}.gpus_per_instance",
                        f"the warehouse does not say how many GPUs {f.instance} has; set it",
                    )
                changes["gpus_per_instance"] = int(gpus)
        if f.fallback_on_demand and f.fallback_price_usd_per_hour is None:
            row, alternatives = self._offer(
                f,
                "on_demand",
                f"{where}.fallback_price_usd_per_hour",
                "fallback_price_usd_per_hour",
            )
            changes["fallback_price_usd_per_hour"] = _num(row["usd_per_hour"])
            prov["fallback"] = {**_offer_provenance(row), "alternatives": alternatives}
        return dataclasses.replace(f, **changes), prov

    def self_hosted(
        self, f: SelfHostedFleetConfig, where: str
    ) -> tuple[SelfHostedFleetConfig, dict]:
        changes: dict[str, Any] = {}
        prov: dict[str, Any] = {"source": "scenario", "gpu_price_usd": f.gpu_price_usd}
        if f.gpu_price_usd is None:
            frame = self.wh.prices(self.as_of, kind="gpu_purchase")
            want = _canonical_gpu(f.gpu)
            rows = [
                r
                for r in self.rows(frame)
                if _canonical_gpu(str(r.get("gpu_model") or r.get("sku") or "")) == want
                and _num(r.get("price"))
            ]
            if not rows:
                self.fail(
                    f"{where}.gpu_price_usd",
                    f"no purchase price for {f.gpu} as of {self.scenario.price_as_of} in the warehouse; set gpu_price_usd",
                )
            # Purchase offers scatter widely between resellers; the median is the least fragile
            # single figure, and the provenance keeps the range.
            per_gpu = sorted(
                _num(r["price"]) / max(_num(r.get("gpu_count")) or 1.0, 1.0) for r in rows
            )
            changes["gpu_price_usd"] = statistics.median(per_gpu)
            prov = {
                "source": sorted({str(r.get("source")) for r in rows}),
                "gpu_model": want,
                "method": f"median of {len(per_gpu)} offers",
                "min_usd": per_gpu[0],
                "max_usd": per_gpu[-1],
                "valid_from": _stamp(
                    max((r.get("valid_from") for r in rows if r.get("valid_from")), default=None)
                ),
                "gpu_price_usd": changes["gpu_price_usd"],
            }
        if f.overflow is not None:
            overflow, oprov = self.api(f.overflow, f"{where}.overflow")
            changes["overflow"] = overflow
            prov["overflow"] = oprov
        prov["electricity_usd_per_kwh"] = {"source": "scenario", "value": f.electricity_usd_per_kwh}
        return dataclasses.replace(f, **changes), prov


def _neg_day(day: dt.date | None) -> int:
    """Sort key putting later days first and unknown days last."""
    return -day.toordinal() if day is not None else 1


def _rank(rows: list[dict], criteria: list) -> tuple[dict | None, list[tuple[dict, str]]]:
    """The best row by `criteria` (name, key) in order, and each other row with the name of the
    first criterion on which it lost to the winner."""
    if not rows:
        return None, []
    ordered = sorted(rows, key=lambda r: tuple(key(r) for _, key in criteria))
    winner = ordered[0]
    lost = []
    for r in ordered[1:]:
        why = next(
            (name for name, key in criteria if key(r) != key(winner)), "tied with the winner"
        )
        lost.append((r, why))
    return winner, lost


def _offer_provenance(row: dict) -> dict:
    return {
        "source": row.get("source"),
        "sku": row.get("sku"),
        "region": row.get("region") or "",
        "valid_from": _stamp(row.get("valid_from")),
        "last_seen": _stamp(row.get("last_seen")),
        "age_days": row.get("age_days"),
        "usd_per_hour": _num(row.get("usd_per_hour")),
    }


def _offer_alternative(row: dict, why: str) -> dict:
    return {**_offer_provenance(row), "lost": why}


def _api_alternative(row: dict, why: str) -> dict:
    return {
        "source": row.get("source"),
        "sku": row.get("model"),
        "region": row.get("region") or "",
        "usd_per_mtok_input": _num(row.get("input_per_mtok")),
        "usd_per_mtok_output": _num(row.get("output_per_mtok")),
        "valid_from": _stamp(row.get("valid_from")),
        "last_seen": _stamp(row.get("last_seen")),
        "lost": why,
    }


def _canonical_gpu(name: str) -> str:
    """Catalog names ("h100-sxm") and warehouse names ("H100-SXM", "H100 SXM") compare equal."""
    found = None
    try:
        from scrapers.gpu_names import canonical_gpu  # the scrapers' own alias table, when present

        found = canonical_gpu(name)
    except (ImportError, AttributeError, KeyError, ValueError):
        pass
    return "".join(ch for ch in str(found or name).upper() if ch.isalnum())
