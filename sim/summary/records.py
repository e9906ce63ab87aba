"""The typed results of a run: what `summary.json`, the warehouse's `sim_summaries`, the console
table, the report and every analysis read. Built once by `sim.summary.summarize`; read back from
a run directory by `RunSummary.from_json`. The one SLO rule and the one cheapest-fleet rule live
here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

LATENCY_METRICS = ("ttft", "e2e", "tpot")
SUMMARY_QUANTILES = ("p50", "p90", "p99")
QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
REQUEST_COUNTS = ("arrivals", "ok", "failed", "dropped", "unfinished")
HOURS_PER_MONTH = 730.0  # 8,760 h / 12: the billing month of cloud price sheets


@dataclass(frozen=True)
class Stat:
    """A figure over replications: its mean, a 95% CI (None below 2 replications) and the values."""

    mean: float | None
    ci95: tuple[float, float] | None = None
    values: tuple[float | None, ...] | None = None  # None where only mean and CI are kept

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mean": self.mean,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
        }
        if self.values is not None:
            out["values"] = list(self.values)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Stat:
        data = data or {}
        ci = data.get("ci95")
        values = data.get("values")
        return cls(
            mean=_num(data.get("mean")),
            ci95=(float(ci[0]), float(ci[1])) if ci else None,
            values=tuple(_num(v) for v in values) if values is not None else None,
        )

    @property
    def lo(self) -> float | None:
        return self.ci95[0] if self.ci95 else None

    @property
    def hi(self) -> float | None:
        return self.ci95[1] if self.ci95 else None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Slo:
    """The targets a summary was judged against (seconds) and the least success rate."""

    targets_s: dict[str, float] = field(default_factory=dict)
    min_success_rate: float = 0.99

    def to_json(self) -> dict[str, float]:
        return {**self.targets_s, "min_success_rate": self.min_success_rate}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slo:
        data = dict(data or {})
        rate = float(data.pop("min_success_rate", 0.99))
        return cls({k: float(v) for k, v in data.items()}, rate)


def _opt(value: Any) -> float | None:
    return None if value is None else _num(value)


def _fields_json(record) -> dict[str, float | None]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _from_fields(cls, data: dict[str, Any]):
    """A record of optional numbers from its JSON (missing fields: None)."""
    return cls(**{f.name: _opt(data.get(f.name)) for f in fields(cls)})


@dataclass(frozen=True)
class FleetEvents:
    """What happened to a fleet besides serving: each figure is the mean over replications of
    that replication's count (so it may be fractional), except `recomputes_max_per_request`, the
    largest over replications, and `cold_start_wait_s_p99`, the mean over the replications in
    which any request waited. None: the fleet kind cannot have the event (API fleets have no
    replicas; only cloud fleets scale and start cold; only API fleets, and hybrid overflow, are
    throttled). Definitions in docs/reports.md ("Events").
    """

    scale_up: float | None = None  # autoscaler decisions to add replicas
    scale_down: float | None = None  # autoscaler decisions to remove replicas
    cold_starts: float | None = None  # replicas launched cold after the start
    cold_start_waits: float | None = None  # requests queued for want of a warm replica
    cold_start_wait_s_p99: float | None = None  # p99 of their wait until a replica warmed
    preemptions: float | None = None  # running sequences evicted because the KV cache was full
    recomputes: float | None = None  # evictions to recompute: preemptions + sequences killed
    recomputed_requests: float | None = None  # requests evicted at least once
    recomputes_max_per_request: float | None = None
    spot_kills: float | None = None  # spot replicas reclaimed by the provider
    throttled: float | None = None  # API rate-limit hits (429s), retries included
    retries: float | None = None  # throttled requests sent again after a backoff

    def to_json(self) -> dict[str, float | None]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> FleetEvents:
        return _from_fields(cls, data or {})

    @classmethod
    def over_replications(cls, counts: list[dict[str, Any]]) -> FleetEvents:
        """From each replication's `meta["event_counts"]` (sim/engine/events.py)."""
        out = {}
        for f in fields(cls):
            values = [float(c[f.name]) for c in counts if c.get(f.name) is not None]
            if not values:
                out[f.name] = None
            elif f.name == "recomputes_max_per_request":
                out[f.name] = max(values)
            else:
                out[f.name] = sum(values) / len(values)
        return cls(**out)


@dataclass(frozen=True)
class Utilisation:
    """How full a GPU fleet was, means over replications (None for API fleets; occupancies None
    in the exponential validation mode). Definitions in docs/reports.md ("Utilisation")."""

    busy_fraction: float | None = None  # busy GPU-seconds over billed GPU-seconds
    batch_occupancy: float | None = None  # running sequences / max_num_seqs, time-weighted
    kv_occupancy: float | None = None  # KV tokens held / KV capacity, time-weighted
    output_tokens_per_s: float | None = None  # achieved: output tokens completed per second
    capacity_output_tokens_per_s: float | None = None  # full-batch decode rate of the replicas

    def to_json(self) -> dict[str, float | None]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Utilisation | None:
        return None if data is None else _from_fields(cls, data)

    @classmethod
    def over_replications(cls, figures: list[dict[str, Any]]) -> Utilisation:
        out = {}
        for f in fields(cls):
            values = [float(u[f.name]) for u in figures if u.get(f.name) is not None]
            out[f.name] = sum(values) / len(values) if values else None
        return cls(**out)


@dataclass(frozen=True)
class PoolSummary:
    """One pool of a disaggregated fleet (docs/disaggregation.md), over replications: its GPU
    and tensor parallelism, replicas launched (mean), busy GPU-seconds over the pool's billed
    GPU-seconds (mean), and its cost (compute, billing rounding, power: everything billed to the
    pool; a Stat over replications)."""

    gpu: str
    tp: int
    replicas_launched: float
    busy_fraction: float
    cost_usd: Stat
    kv_capacity_tokens: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "tp": self.tp,
            "replicas_launched": self.replicas_launched,
            "busy_fraction": self.busy_fraction,
            "cost_usd": self.cost_usd.to_json(),
            "kv_capacity_tokens": self.kv_capacity_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolSummary:
        return cls(
            gpu=str(data.get("gpu", "")),
            tp=int(data.get("tp", 0)),
            replicas_launched=float(data.get("replicas_launched", 0.0)),
            busy_fraction=float(data.get("busy_fraction", 0.0)),
            cost_usd=Stat.from_json(data.get("cost_usd")),
            kv_capacity_tokens=_opt(data.get("kv_capacity_tokens")),
        )


@dataclass(frozen=True)
class KvLinkSummary:
    """The KV transfer link of a disaggregated fleet: its kind, bandwidth and latency, and the
    transfers made and their mean duration (means over replications)."""

    kind: str
    gbps: float
    latency_s: float
    transfers: float
    mean_transfer_s: float

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> KvLinkSummary | None:
        if not data:
            return None
        return cls(
            kind=str(data.get("kind", "")),
            **{
                name: float(data.get(name, 0.0))
                for name in ("gbps", "latency_s", "transfers", "mean_transfer_s")
            },
        )


@dataclass(frozen=True)
class SloWindows:
    """How many time windows breached the SLO, means over replications. A window is judged when
    at least one request finished in it; it misses when a latency percentile the SLO names
    (p50, p90 or p99 of TTFT, TPOT or E2E), taken over the requests that finished in that
    window, is above its target. Targets at other percentiles (p95) are not judged per window."""

    missed: float
    judged: float
    windows: float
    window_s: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SloWindows | None:
        if not data:
            return None
        return cls(
            float(data.get("missed", 0)),
            float(data.get("judged", 0)),
            float(data.get("windows", 0)),
            _opt(data.get("window_s")),
        )

    def text(self) -> str:
        """e.g. "SLO missed in 7 of 60 windows" (counts rounded to whole windows)."""
        return f"SLO missed in {self.missed:,.0f} of {self.judged:,.0f} windows"


@dataclass(frozen=True)
class FleetSummary:
    """One fleet of a run: cost, latency percentiles, success and the SLO verdict."""

    name: str
    kind: str
    total_cost_usd: Stat
    usd_per_mtok_output: Stat
    usd_per_1k_requests: Stat
    success_rate: Stat
    slo_attainment: Stat
    slo_attainment_by_target: dict[str, Stat]
    latency_s: dict[str, dict[str, Stat]]  # metric ("ttft", "e2e", "tpot") -> quantile -> Stat
    meets_slo: bool
    requests: dict[str, float]  # REQUEST_COUNTS, means over replications
    cost_breakdown_usd: dict[str, float]
    prices: dict[str, Any] = field(default_factory=dict)  # provenance of the prices used
    usd_per_mtok: Stat = Stat(None)  # blended: cost over input + output tokens of served requests
    usd_per_hour: Stat = Stat(None)  # cost over the simulated span (the workload's duration)
    usd_per_month: Stat = Stat(None)  # usd_per_hour x 730 h, the span's traffic extended a month
    # "met" | "missed" | "uncertain" when step times move to the edges of the serving model's
    # held-out error (sim/run/robust.py); "unknown" when the profile has no such error; None when
    # not checked.
    slo_robust: str | None = None
    # Prompt caching (None where it does not apply): GPU fleets with engine.prefix_cache = true
    # report their per-replica caches, API fleets the tokens billed as cached input and writes.
    prefix_cache: PrefixCacheSummary | None = None
    api_cache: ApiCacheSummary | None = None
    events: FleetEvents = FleetEvents()
    utilisation: Utilisation | None = None  # GPU fleets only
    slo_windows: SloWindows | None = None  # None when the SLO names no latency target
    # A disaggregated fleet's pools ("prefill", "decode") and KV link; None for other fleets.
    pools: dict[str, PoolSummary] | None = None
    kv_link: KvLinkSummary | None = None

    def latency(self, metric: str, quantile: str) -> float | None:
        stat = self.latency_s.get(metric, {}).get(quantile)
        return stat.mean if stat is not None else None

    def figures(self) -> dict[str, float | None]:
        """Every headline number as one flat mapping, the columns all tables share."""
        out: dict[str, float | None] = {
            "total_cost_usd": self.total_cost_usd.mean,
            "total_cost_usd_lo": self.total_cost_usd.lo,
            "total_cost_usd_hi": self.total_cost_usd.hi,
            "usd_per_mtok_output": self.usd_per_mtok_output.mean,
            "usd_per_1k_requests": self.usd_per_1k_requests.mean,
            "usd_per_mtok": self.usd_per_mtok.mean,
            "usd_per_hour": self.usd_per_hour.mean,
            "usd_per_month": self.usd_per_month.mean,
            "success_rate": self.success_rate.mean,
            "slo_attainment": self.slo_attainment.mean,
        }
        for metric in LATENCY_METRICS:
            for q in SUMMARY_QUANTILES:
                out[f"{metric}_{q}_s"] = self.latency(metric, q)
        for key in REQUEST_COUNTS:
            out[f"requests_{key}"] = self.requests.get(key)
        return out

    def failed_terms(self, slo: Slo) -> list[str]:
        """The SLO terms this fleet misses (`ttft_p99_s`, ..., `success_rate`), in SLO order."""
        return slo_failures(self, slo)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "total_cost_usd": self.total_cost_usd.to_json(),
            "usd_per_mtok_output": self.usd_per_mtok_output.to_json(),
            "usd_per_1k_requests": self.usd_per_1k_requests.to_json(),
            "success_rate": self.success_rate.to_json(),
            "slo_attainment": self.slo_attainment.to_json(),
            "slo_attainment_by_target": {
                k: s.to_json() for k, s in self.slo_attainment_by_target.items()
            },
        }
        for metric in LATENCY_METRICS:
            out[f"{metric}_s"] = {q: s.to_json() for q, s in self.latency_s.get(metric, {}).items()}
        out["meets_slo"] = self.meets_slo
        out["requests"] = dict(self.requests)
        out["cost_breakdown_usd"] = dict(self.cost_breakdown_usd)
        out["prices"] = self.prices
        out["usd_per_mtok"] = self.usd_per_mtok.to_json()
        out["usd_per_hour"] = self.usd_per_hour.to_json()
        out["usd_per_month"] = self.usd_per_month.to_json()
        out["slo_robust"] = self.slo_robust
        if self.prefix_cache is not None:
            out.update(self.prefix_cache.to_json())
        if self.api_cache is not None:
            out.update(self.api_cache.to_json())
        out["events"] = self.events.to_json()
        out["utilisation"] = self.utilisation.to_json() if self.utilisation else None
        out["slo_windows"] = self.slo_windows.to_json() if self.slo_windows else None
        if self.pools is not None:
            out["pools"] = {name: pool.to_json() for name, pool in self.pools.items()}
        if self.kv_link is not None:
            out["kv_link"] = self.kv_link.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetSummary:
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", "")),
            total_cost_usd=Stat.from_json(data.get("total_cost_usd")),
            usd_per_mtok_output=Stat.from_json(data.get("usd_per_mtok_output")),
            usd_per_1k_requests=Stat.from_json(data.get("usd_per_1k_requests")),
            success_rate=Stat.from_json(data.get("success_rate")),
            slo_attainment=Stat.from_json(data.get("slo_attainment")),
            slo_attainment_by_target={
                k: Stat.from_json(v)
                for k, v in (data.get("slo_attainment_by_target") or {}).items()
            },
            latency_s={
                m: {q: Stat.from_json(v) for q, v in (data.get(f"{m}_s") or {}).items()}
                for m in LATENCY_METRICS
            },
            meets_slo=bool(data.get("meets_slo", False)),
            requests={k: float(v) for k, v in (data.get("requests") or {}).items()},
            cost_breakdown_usd={
                k: float(v) for k, v in (data.get("cost_breakdown_usd") or {}).items()
            },
            prices=dict(data.get("prices") or {}),
            usd_per_mtok=Stat.from_json(data.get("usd_per_mtok")),
            usd_per_hour=Stat.from_json(data.get("usd_per_hour")),
            usd_per_month=Stat.from_json(data.get("usd_per_month")),
            slo_robust=data.get("slo_robust"),
            prefix_cache=PrefixCacheSummary.from_json(data),
            api_cache=ApiCacheSummary.from_json(data),
            events=FleetEvents.from_json(data.get("events")),
            utilisation=Utilisation.from_json(data.get("utilisation")),
            slo_windows=SloWindows.from_json(data.get("slo_windows")),
            pools={k: PoolSummary.from_json(v) for k, v in data["pools"].items()}
            if data.get("pools")
            else None,
            kv_link=KvLinkSummary.from_json(data.get("kv_link")),
        )


class _Stats:
    """A record of `Stat` fields kept flat in a fleet's JSON (absent: the record is None)."""

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_json() for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        names = list(cls.__dataclass_fields__)
        if names[0] not in data:
            return None
        return cls(**{name: Stat.from_json(data.get(name)) for name in names})


@dataclass(frozen=True)
class PrefixCacheSummary(_Stats):
    """A GPU fleet's per-replica prefix caches over replications (each request counted at its
    first admission): hit rates as fractions in [0, 1] of prompt tokens and of requests (a
    request hits with at least one block), blocks evicted, and the prefill GPU-seconds the hits
    avoided (step model: the whole prompt as one step less its uncached rest, x GPUs)."""

    prefix_hit_rate_tokens: Stat
    prefix_hit_rate_requests: Stat
    prefix_evictions: Stat
    prefix_gpu_s_saved: Stat


@dataclass(frozen=True)
class ApiCacheSummary(_Stats):
    """An API fleet's prompt tokens billed as cached input and as cache writes (means over
    replications of the totals over served requests)."""

    cached_input_tokens: Stat
    cache_write_tokens: Stat


@dataclass(frozen=True)
class WorkloadSummary:
    name: str | list[str]
    requests: Stat
    duration_s: Stat
    cached_prompt_tokens: Stat = Stat(None)  # prompt tokens a prefix cache could serve

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests.to_json(),
            "duration_s": self.duration_s.to_json(),
            "cached_prompt_tokens": self.cached_prompt_tokens.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WorkloadSummary:
        data = data or {}
        return cls(
            data.get("name", ""),
            Stat.from_json(data.get("requests")),
            Stat.from_json(data.get("duration_s")),
            Stat.from_json(data.get("cached_prompt_tokens")),
        )


@dataclass(frozen=True)
class RunSummary:
    """A whole run: the scenario's identity, the SLO, every fleet, and the verdict."""

    scenario: str
    description: str
    workload: WorkloadSummary
    seed: int
    replications: int
    price_as_of: str
    slo: Slo
    fleets: tuple[FleetSummary, ...]
    cheapest_meeting_slo: str | None = None
    warnings: tuple[str, ...] = ()
    step_time_band: tuple[float, float] | None = None  # the error band slo_robust was judged on
    # "exact" (every request in memory) or "streaming" (per-window aggregates, latency
    # percentiles from sketches within 1%): the path the run took (`engine_path = "auto"` picks)
    engine_path: str = "exact"

    def notes(self) -> list[tuple[str, str]]:
        """(fleet, note) of the price notes that matter to this run: a note about cached-input
        prices only when the traffic had cached prompt tokens (or it is not known)."""
        cached = self.workload.cached_prompt_tokens.mean
        out = []
        for f in self.fleets:
            note = f.prices.get("note")
            if not note:
                continue
            if f.prices.get("note_when") == "cached_tokens" and cached is not None and cached <= 0:
                continue
            out.append((f.name, str(note)))
        return out

    def fleet(self, name: str) -> FleetSummary:
        for f in self.fleets:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        out = {
            "scenario": self.scenario,
            "description": self.description,
            "workload": self.workload.to_json(),
            "seed": self.seed,
            "replications": self.replications,
            "price_as_of": self.price_as_of,
            "slo": self.slo.to_json(),
            "cheapest_meeting_slo": self.cheapest_meeting_slo,
            "fleets": [f.to_json() for f in self.fleets],
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.step_time_band is not None:
            out["step_time_band"] = list(self.step_time_band)
        out["engine_path"] = self.engine_path
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        fleets = tuple(FleetSummary.from_json(f) for f in data.get("fleets") or ())
        slo = Slo.from_json(data.get("slo") or {})
        verdict = data["cheapest_meeting_slo"] if "cheapest_meeting_slo" in data else cheapest(fleets)  # fmt: skip
        return cls(
            scenario=str(data.get("scenario", "")),
            description=str(data.get("description", "")),
            workload=WorkloadSummary.from_json(data.get("workload")),
            seed=int(data.get("seed", 0) or 0),
            replications=int(data.get("replications", len(fleets) and 1) or 0),
            price_as_of=str(data.get("price_as_of", "latest")),
            slo=slo,
            fleets=fleets,
            cheapest_meeting_slo=verdict,
            warnings=tuple(data.get("warnings") or ()),
            step_time_band=tuple(data["step_time_band"]) if data.get("step_time_band") else None,
            engine_path=str(data.get("engine_path", "exact")),
        )


# ---------------------------------------------------------------------------------------------
# the rules


def slo_failures(fleet: FleetSummary, slo: Slo) -> list[str]:
    """SLO terms missed: a latency target is met when the replication mean of that percentile is
    at or below it; success when the mean success rate reaches the minimum."""
    failed = []
    for key, limit in slo.targets_s.items():
        metric, q, _ = key.split("_")
        mean = fleet.latency(metric, q)
        if mean is None or mean > limit:
            failed.append(key)
    success = fleet.success_rate.mean
    if success is None or success < slo.min_success_rate:
        failed.append("success_rate")
    return failed


def meets_slo(fleet: FleetSummary, slo: Slo) -> bool:
    return not slo_failures(fleet, slo)


def cheapest(fleets, cost=lambda f: f.total_cost_usd.mean) -> str | None:
    """The fleet with the lowest cost among those meeting the SLO; None when none does.

    Ties go to the first fleet in order, so the verdict never depends on float noise between
    identical fleets.
    """
    best, best_cost = None, math.inf
    for f in fleets:
        value = cost(f)
        if f.meets_slo and value is not None and value < best_cost:
            best, best_cost = f.name, value
    return best
