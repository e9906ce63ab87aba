"""Fill the prices a scenario leaves unset from the warehouse, as of the scenario's price date,
and record where each one came from. A price that is not there is an error naming the field:
never a guess.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from typing import Any

from sim.engine.config import ApiFleetConfig, CloudFleetConfig, SelfHostedFleetConfig
from sim.errors import InputError
from sim.scenario import Scenario


def needs_prices(scenario: Scenario) -> bool:
    """True when some fleet still has a price left as None."""
    return any(_missing(f) for f in scenario.fleets)


def _missing(f: Any) -> bool:
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


def resolve_prices(scenario: Scenario, warehouse: Any = None) -> Scenario:
    """A copy of `scenario` with every price a float and `prices` holding each one's provenance.

    `warehouse` is a `warehouse.Warehouse` (opened read-only on the default database when None and
    some price is missing). Explicit prices are kept and recorded as `source = "scenario"`.
    """
    if warehouse is None and needs_prices(scenario):
        warehouse = _open_warehouse(scenario)
    resolver = _Resolver(scenario, warehouse)
    fleets = []
    prices: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(scenario.fleets):
        fleet, provenance = resolver.fleet(f, f"fleet[{i}]")
        fleets.append(fleet)
        prices[f.name] = provenance
    return dataclasses.replace(scenario, fleets=tuple(fleets), prices=prices)


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


def _first(row: dict, *names: str) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def _stamp(value: Any) -> str | None:
    return (
        value.isoformat()
        if isinstance(value, dt.date | dt.datetime)
        else (None if value is None else str(value))
    )


class _Resolver:
    def __init__(self, scenario: Scenario, warehouse: Any):
        self.scenario = scenario
        self.wh = warehouse
        self.as_of = as_of_arg(scenario.price_as_of)
        self.source = str(scenario.path)

    def fail(self, field: str, reason: str):
        raise InputError(self.source, field, reason)

    def rows(self, frame: Any) -> list[dict]:
        if frame is None:
            return []
        return [r for r in frame.to_dicts() if str(r.get("currency", "USD") or "USD") == "USD"]

    def fleet(self, f: Any, where: str) -> tuple[Any, dict]:
        if isinstance(f, ApiFleetConfig):
            return self.api(f, where)
        if isinstance(f, CloudFleetConfig):
            return self.cloud(f, where)
        return self.self_hosted(f, where)

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
            r for r in rows if _num(_first(r, "input_per_mtok", "usd_per_mtok_input")) is not None
        ]
        rows = [
            r for r in rows if _num(_first(r, "output_per_mtok", "usd_per_mtok_output")) is not None
        ]
        if not rows:
            self.fail(
                f"{where}.model",
                f"no token price for {f.provider} {f.model} as of {self.scenario.price_as_of}; "
                "set price_usd_per_mtok_input and price_usd_per_mtok_output",
            )
        # Several sources may price the same model; the global (region "") and cheapest wins, and
        # the provenance says which one it was.
        rows.sort(
            key=lambda r: (
                str(r.get("region") or "") != "",
                _num(_first(r, "input_per_mtok", "usd_per_mtok_input")),
                str(r.get("source")),
            )
        )
        row = rows[0]
        inp = f.price_usd_per_mtok_input
        out = f.price_usd_per_mtok_output
        inp = inp if inp is not None else _num(_first(row, "input_per_mtok", "usd_per_mtok_input"))
        out = (
            out if out is not None else _num(_first(row, "output_per_mtok", "usd_per_mtok_output"))
        )
        cached = f.price_usd_per_mtok_cached_input
        note = None
        if cached is None:
            cached = _num(_first(row, "cached_input_per_mtok", "usd_per_mtok_cached_input"))
            if cached is None:
                cached, note = inp, "source has no cached-input price: cached input priced as input"
        prov = {
            "source": row.get("source"),
            "provider": f.provider,
            "sku": _first(row, "model", "sku"),
            "region": row.get("region") or "",
            "valid_from": _stamp(row.get("valid_from")),
            "usd_per_mtok_input": inp,
            "usd_per_mtok_output": out,
            "usd_per_mtok_cached_input": cached,
            "note": note,
        }
        resolved = dataclasses.replace(
            f,
            price_usd_per_mtok_input=inp,
            price_usd_per_mtok_output=out,
            price_usd_per_mtok_cached_input=cached,
        )
        return resolved, prov

    def _offer(self, f: CloudFleetConfig, term: str, where: str, hint: str) -> dict:
        rows = self.rows(
            self.wh.gpu_offers(
                self.as_of, provider=f.provider, sku=f.instance, region=f.region or None, term=term
            )
        )
        rows = [r for r in rows if _num(_first(r, "usd_per_hour")) is not None]
        if not rows:
            region = f" in {f.region}" if f.region else ""
            self.fail(
                where,
                f"no price for {f.provider} {f.instance} {term}{region} as of {self.scenario.price_as_of}; set {hint}",
            )
        # Region left empty = the cheapest region at the price date (ties broken by name, so the
        # choice is stable).
        rows.sort(
            key=lambda r: (
                _num(r["usd_per_hour"]),
                str(r.get("region") or ""),
                str(r.get("source")),
            )
        )
        return rows[0]

    def cloud(self, f: CloudFleetConfig, where: str) -> tuple[CloudFleetConfig, dict]:
        changes: dict[str, Any] = {}
        prov: dict[str, Any] = {"source": "scenario", "usd_per_hour": f.price_usd_per_hour}
        if f.price_usd_per_hour is None or f.gpus_per_instance is None:
            if f.price_usd_per_hour is None:
                row = self._offer(f, f.term, f"{where}.instance", "price_usd_per_hour")
            else:
                row = self._offer(f, f.term, f"{where}.gpus_per_instance", "gpus_per_instance")
            gpus = _num(row.get("gpu_count"))
            if f.price_usd_per_hour is None:
                changes["price_usd_per_hour"] = _num(row["usd_per_hour"])
                prov = {
                    "source": row.get("source"),
                    "provider": f.provider,
                    "sku": row.get("sku", f.instance),
                    "region": row.get("region") or "",
                    "term": f.term,
                    "gpu_model": row.get("gpu_model"),
                    "gpu_count": gpus,
                    "valid_from": _stamp(row.get("valid_from")),
                    "usd_per_hour": changes["price_usd_per_hour"],
                }
            if f.gpus_per_instance is None:
                if gpus is None or gpus < 1 or not float(gpus).is_integer():
                    self.fail(
                        f"{where}.gpus_per_instance",
                        f"the warehouse does not say how many GPUs {f.instance} has; set it",
                    )
                changes["gpus_per_instance"] = int(gpus)
        if f.fallback_on_demand and f.fallback_price_usd_per_hour is None:
            row = self._offer(
                f,
                "on_demand",
                f"{where}.fallback_price_usd_per_hour",
                "fallback_price_usd_per_hour",
            )
            changes["fallback_price_usd_per_hour"] = _num(row["usd_per_hour"])
            prov["fallback"] = {
                "source": row.get("source"),
                "region": row.get("region") or "",
                "valid_from": _stamp(row.get("valid_from")),
                "usd_per_hour": changes["fallback_price_usd_per_hour"],
            }
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


def _canonical_gpu(name: str) -> str:
    """Catalog names ("h100-sxm") and warehouse names ("H100-SXM", "H100 SXM") compare equal."""
    found = None
    try:
        from scrapers.gpu_names import canonical_gpu  # the scrapers' own alias table, when present

        found = canonical_gpu(name)
    except (ImportError, AttributeError, KeyError, ValueError):
        pass
    return "".join(ch for ch in str(found or name).upper() if ch.isalnum())
