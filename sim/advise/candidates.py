"""Candidates: every way the market offers to serve the scenario's model, each as a fleet config
`sim run` can simulate plus the screen's estimate of its cost.

Kinds: `api` (every provider serving the model), `cloud` (every GPU offer that holds it, per TP
degree and precision, autoscaled or committed), `self_hosted` (GPUs bought at warehouse prices,
sized to the peak), `mix` (a committed base with on-demand burst; an owned base overflowing to an
API). Prices come from the warehouse as of the scenario's price date.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.advise.constraints import AdviseConstraints
from sim.advise.screen import (
    TARGET_UTIL,
    Capacity,
    Estimate,
    WorkloadStats,
    replica_capacity,
    replicas_per_bin,
)
from sim.advise.skus import api_skus
from sim.engine.billing import is_commitment
from sim.engine.config import ApiFleetConfig, CloudFleetConfig, SelfHostedFleetConfig
from sim.engine.self_hosted import MONTH_S, YEAR_S, amortised_usd_per_year, capex_usd
from sim.errors import InputError
from sim.gpu_match import catalog_gpu_for
from sim.perf.profile import TP_CHOICES

# Assumptions of the screen and of the fleets it sizes; each candidate lists the ones it uses.
AUTOSCALE_OVERHEAD = 1.10  # autoscaled fleets run ~10% more replica-hours than the traffic needs
SPOT_PREEMPTIONS_PER_HOUR = 0.05  # assumption: no public source gives preemption rates
MAX_TP_ACROSS_INSTANCES = 8  # per-GPU offers compose into one replica of at most 8 GPUs
GPUS_PER_SERVER = 8
API_LATENCY_NOTE = (
    "API latency: infercost's default API latency model, not measured for this provider"
)
SPOT_NOTE = (
    f"spot: {SPOT_PREEMPTIONS_PER_HOUR} preemptions per replica-hour assumed (no public rate)"
)
PURCHASE_NOTE = (
    "purchase: server, power and colocation at SelfHostedFleetConfig defaults "
    "(USD 60k per 8-GPU server, 4-year life, 10% residual, 1.5 kW host, PUE 1.3, "
    "USD 0.13/kWh, USD 2000 per server-month)"
)


@dataclass
class Candidate:
    """One way to serve the traffic: a fleet config with resolved prices and its screen figures."""

    kind: str  # api | cloud | self_hosted | mix
    description: str
    provider: str
    term: str
    fleet: Any
    estimate: Estimate | None = None  # None: not screened (the scenario's own fleets)
    region: str = ""
    gpu: str | None = None
    tp: int | None = None
    precision: str | None = None
    capacity: Capacity | None = None
    upfront_usd: float | None = None
    monthly_opex_usd: float | None = None  # purchases: colo and power per month
    price_source: str = ""
    assumptions: tuple[str, ...] = ()
    from_scenario: bool = False
    dedupe: tuple = field(default_factory=tuple)


def _rows(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    rows = frame.to_dicts()
    # Rows another part of infercost has quarantined (integrity findings) never price anything.
    return [
        r
        for r in rows
        if str(r.get("currency") or "USD") == "USD" and not r.get("quarantined", False)
    ]


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _stamp(value) -> str:
    return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value or "")[:10]


def _newest_then_cheapest(rows: list[dict], key: Callable, price: Callable) -> list[dict]:
    """One row per `key`: the newest observation, then the lowest price (the choice rule)."""
    best: dict[Any, dict] = {}
    for r in rows:
        k = key(r)
        cur = best.get(k)
        if cur is None:
            best[k] = r
            continue
        newer = str(r.get("valid_from") or "") > str(cur.get("valid_from") or "")
        same = str(r.get("valid_from") or "") == str(cur.get("valid_from") or "")
        if newer or (same and price(r) < price(cur)):
            best[k] = r
    return list(best.values())


# -- APIs ------------------------------------------------------------------------------------


def read_market(wh, as_of, model: str) -> dict[str, list[dict]]:
    """The warehouse rows the candidates are built from, as of the price date."""
    import polars as pl

    api = wh.api_prices(as_of)
    if len(api):
        api = api.filter(pl.col("model").is_in(list(api_skus(model))))
    return {
        "api": _rows(api),
        "offers": _rows(wh.gpu_offers(as_of)),
        "purchase": _rows(wh.prices(as_of, kind="gpu_purchase")),
    }


def api_candidates(
    rows: list[dict], stats: WorkloadStats, c: AdviseConstraints
) -> tuple[list[Candidate], list[str]]:
    """One candidate per provider SKU serving the model (`rows` from `read_market`); the notes
    say which rows were refused."""
    notes: list[str] = []
    priced = []
    for r in rows:
        inp, out = _num(r.get("input_per_mtok")), _num(r.get("output_per_mtok"))
        if inp is None or out is None:
            continue
        if inp <= 0 or out <= 0:  # a zero price is never used as a cost
            notes.append(f"{r['provider']} {r['model']}: price 0 in {r['source']}, not used")
            continue
        if not c.allows_provider(str(r["provider"])):
            continue
        priced.append(r)
    # Global rows (region "") before regional ones, then the choice rule per provider SKU.
    priced = _newest_then_cheapest(
        priced,
        key=lambda r: (r["provider"], r["model"]),
        price=lambda r: (str(r.get("region") or "") != "", float(r["input_per_mtok"])),
    )
    out_list = []
    for r in sorted(priced, key=lambda r: (r["provider"], r["model"])):
        inp, out = float(r["input_per_mtok"]), float(r["output_per_mtok"])
        cached = _num(r.get("cached_input_per_mtok"))
        assumptions = [API_LATENCY_NOTE]
        if cached is None or cached <= 0:
            cached = inp
            assumptions.append("cached input priced as input (source gives no cached price)")
        cfg = ApiFleetConfig(
            name="candidate",
            provider=str(r["provider"]),
            model=str(r["model"]),
            price_usd_per_mtok_input=inp,
            price_usd_per_mtok_output=out,
            price_usd_per_mtok_cached_input=cached,
        )
        cost = api_token_cost(stats, inp, out, cached)
        out_list.append(
            Candidate(
                kind="api",
                description=f"{r['provider']} {r['model']} (${inp:g} in / ${out:g} out per Mtok)",
                provider=str(r["provider"]),
                term="on_demand",
                fleet=cfg,
                estimate=Estimate(cost, cost * (1 - 1e-9), True),
                region=str(r.get("region") or ""),
                price_source=f"{r['source']} {_stamp(r.get('valid_from'))}",
                assumptions=tuple(assumptions),
                dedupe=("api", r["provider"], inp, out),
            )
        )
    return out_list, notes


def api_token_cost(stats: WorkloadStats, inp: float, out: float, cached: float) -> float:
    return (
        (stats.input_tokens - stats.cached_tokens) * inp
        + stats.cached_tokens * cached
        + stats.output_tokens * out
    ) / 1e6


# -- cloud GPU offers ------------------------------------------------------------------------


class Sizer:
    """Capacities per (gpu, tp, precision), computed once from the step model."""

    def __init__(self, factory: Callable, stats: WorkloadStats, slo_targets: dict):
        self.factory = factory
        self.stats = stats
        self.slo = slo_targets
        self._cache: dict[tuple, tuple[Any, Capacity | None]] = {}

    def warm(self, precisions: tuple[str, ...]) -> None:
        """Build every catalog GPU's profiles up front (the step model's share of the work)."""
        from sim.perf import list_gpus

        for gpu in list_gpus():
            for tp in TP_CHOICES:
                if tp <= MAX_TP_ACROSS_INSTANCES:
                    for prec in precisions:
                        self.get(gpu, tp, prec)

    def get(self, gpu: str, tp: int, precision: str) -> tuple[Any, Capacity | None]:
        key = (gpu, tp, precision)
        if key not in self._cache:
            try:
                profile = self.factory(gpu, tp, precision, 0.9)
            except InputError:  # e.g. tp does not divide the model's heads
                profile = None
            if profile is None or not profile.fits:
                self._cache[key] = (profile, None)
            else:
                self._cache[key] = (profile, replica_capacity(profile, self.stats, self.slo))
        return self._cache[key]


def _tp_options(gpu_count: float, composable: bool) -> list[int]:
    if gpu_count < 1 or not float(gpu_count).is_integer():
        return []
    g = int(gpu_count)
    if composable:
        return [t for t in TP_CHOICES if t <= MAX_TP_ACROSS_INSTANCES and t >= g and t % g == 0]
    return [g] if g in TP_CHOICES else []


def cloud_candidates(
    offers: list[dict], sizer: Sizer, precisions: tuple[str, ...], c: AdviseConstraints
) -> list[Candidate]:
    """Every GPU offer holding the model: autoscaled (pay-as-you-go terms), fixed (commitments),
    and commitment base + on-demand burst mixes."""
    rows = [
        r
        for r in offers
        if (_num(r.get("usd_per_hour")) or 0) > 0
        and c.allows_provider(str(r["provider"]))
        and c.allows_region(str(r.get("region") or ""))
    ]
    rows = _newest_then_cheapest(
        rows,
        key=lambda r: (r["provider"], r["sku"], r.get("region") or "", r["term"]),
        price=lambda r: float(r["usd_per_hour"]),
    )
    on_demand = {
        (r["provider"], r["sku"], r.get("region") or ""): float(r["usd_per_hour"])
        for r in rows
        if r["term"] == "on_demand"
    }
    catalog: dict[str, str | None] = {}
    out: list[Candidate] = []
    for r in rows:
        if not c.allows_term(str(r["term"])):
            continue
        gpu_model = r.get("gpu_model")
        if gpu_model not in catalog:
            catalog[gpu_model] = catalog_gpu_for(gpu_model)
        gpu = catalog[gpu_model]
        if gpu is None:
            continue  # no step model for this GPU: its speed is unknown
        composable = r.get("unit") == "usd_per_gpu_hour" or r.get("kind") == "gpu_serverless"
        for tp in _tp_options(_num(r.get("gpu_count")) or 0, composable):
            for prec in precisions:
                _, cap = sizer.get(gpu, tp, prec)
                if cap is None:
                    continue  # the model does not fit
                od = on_demand.get((r["provider"], r["sku"], r.get("region") or ""))
                out.extend(_cloud_variants(r, gpu, tp, prec, cap, sizer.stats, c, od))
    return out


def _cloud_variants(r, gpu, tp, prec, cap, stats, c, od_usd_per_hour) -> list[Candidate]:
    g = int(float(r["gpu_count"]))
    instances = tp / g
    usd_per_hour = float(r["usd_per_hour"])
    replica_hour = usd_per_hour * instances
    term = str(r["term"])
    region = str(r.get("region") or "")
    base = dict(
        provider=str(r["provider"]),
        term=term,
        region=region,
        gpu=gpu,
        tp=tp,
        precision=prec,
        capacity=cap,
        price_source=f"{r['source']} {_stamp(r.get('valid_from'))}",
    )
    label = f"{r['provider']} {r['sku']}{' ' + region if region else ''} {term}"
    shape = f"{tp}x {gpu} {prec}"
    common = dict(
        name="candidate",
        gpu=gpu,
        tp=tp,
        precision=prec,
        provider=str(r["provider"]),
        instance=str(r["sku"]),
        region=region,
        term=term,
        gpus_per_instance=g,
        price_usd_per_hour=usd_per_hour,
    )
    dedupe = ("cloud", r["provider"], gpu, g, term, tp, prec, usd_per_hour)

    def cloud(description: str, cfg, estimate: Estimate, assumptions=()) -> Candidate:
        return Candidate(
            kind="cloud",
            description=f"{label}: {description}",
            fleet=cfg,
            estimate=estimate,
            assumptions=assumptions,
            dedupe=dedupe,
            **base,
        )

    if not cap.feasible:
        est = Estimate(math.inf, math.inf, False, cap.why_not)
        return [cloud(shape, CloudFleetConfig(**common), est)]
    need = replicas_per_bin(stats, cap.rps)
    widths = stats.bin_widths()
    peak = int(need.max())
    span_h = stats.span_s / 3600
    common.update(
        policy="rate",
        target=cap.rps,
        decision_interval_s=20.0,
        upscale_delay_s=60.0,
        downscale_delay_s=600.0,
    )
    out = []
    if is_commitment(term):
        # Fixed: the peak committed for the whole span.
        cost = peak * replica_hour * span_h
        cfg = CloudFleetConfig(
            **common, min_replicas=peak, max_replicas=peak, initial_replicas=peak
        )
        out.append(
            cloud(f"{peak} x {shape} committed", cfg, _gpu_estimate(cost, cost, peak * tp, c))
        )
        if od_usd_per_hour is not None and od_usd_per_hour > usd_per_hour:
            out.append(
                _commitment_mix(
                    r,
                    common,
                    base,
                    label,
                    shape,
                    need,
                    widths,
                    peak,
                    c,
                    replica_hour,
                    od_usd_per_hour * instances,
                    span_h,
                )
            )
        return out
    spot = term == "spot"
    low = int(need.min())
    top = max(peak + max(1, peak // 4), low)
    cost = float((need * widths).sum()) / 3600 * replica_hour * AUTOSCALE_OVERHEAD
    lower = max(low * span_h, stats.requests * cap.min_busy_s_per_request / 3600) * replica_hour
    cfg = CloudFleetConfig(
        **common,
        min_replicas=low,
        max_replicas=top,
        initial_replicas=int(need[0]),
        spot_preemptions_per_hour=SPOT_PREEMPTIONS_PER_HOUR if spot else 0.0,
    )
    out.append(
        cloud(
            f"{low}-{top} x {shape}, autoscaled at {cap.rps:.2f} req/s per replica",
            cfg,
            _gpu_estimate(cost, lower, top * tp, c),
            (SPOT_NOTE,) if spot else (),
        )
    )
    return out


def _commitment_mix(
    r, common, base, label, shape, need, widths, peak, c, committed_hour, od_hour, span_h
) -> Candidate:
    """Commit the replicas busy often enough to beat on-demand; burst the rest on demand."""
    ratio = committed_hour / od_hour  # a replica is worth committing if needed this often
    busy = [(need >= k).mean() for k in range(1, peak + 1)]
    n_base = max(
        [k for k, frac in zip(range(1, peak + 1), busy, strict=True) if frac >= ratio] or [1]
    )
    top = max(peak + max(1, peak // 4), n_base)
    burst_h = float((np.maximum(need - n_base, 0) * widths).sum()) / 3600
    cost = n_base * committed_hour * span_h + burst_h * od_hour * AUTOSCALE_OVERHEAD
    lower = n_base * committed_hour * span_h
    cfg = CloudFleetConfig(
        **common,
        min_replicas=n_base,
        max_replicas=top,
        initial_replicas=max(n_base, int(need[0])),
        fallback_price_usd_per_hour=od_hour / (common["tp"] / common["gpus_per_instance"]),
    )
    return Candidate(
        kind="mix",
        description=f"{label}: {n_base} x {shape} committed + up to {top - n_base} on demand",
        fleet=cfg,
        estimate=_gpu_estimate(cost, lower, top * common["tp"], c),
        dedupe=(
            "mix-commit",
            r["provider"],
            r["sku"],
            r["term"],
            common["tp"],
            common["precision"],
            committed_hour,
        ),
        **base,
    )


def _gpu_estimate(cost: float, lower: float, peak_gpus: int, c: AdviseConstraints) -> Estimate:
    if peak_gpus > c.max_gpus:
        return Estimate(
            cost,
            lower,
            False,
            f"needs {peak_gpus} GPUs at peak, above max_gpus = {c.max_gpus}",
            peak_gpus,
        )
    return Estimate(cost, lower, True, None, peak_gpus)


# -- purchases -------------------------------------------------------------------------------


def purchase_prices(rows: list[dict]) -> dict[str, tuple[float, str]]:
    """Catalog GPU -> (median purchase price per GPU, provenance) from `gpu_purchase` rows."""
    by_gpu: dict[str, list[tuple[float, dict]]] = {}
    for r in rows:
        gpu = catalog_gpu_for(r.get("gpu_model"))
        price = _num(r.get("price"))
        if gpu is None or not price or price <= 0:
            continue
        by_gpu.setdefault(gpu, []).append((price / max(_num(r.get("gpu_count")) or 1.0, 1.0), r))
    out = {}
    for gpu, items in by_gpu.items():
        med = statistics.median(p for p, _ in items)
        newest = max(_stamp(r.get("valid_from")) for _, r in items)
        out[gpu] = (med, f"median of {len(items)} gpu_purchase offers, newest {newest}")
    return out


def _owned_fleet(gpu, tp, prec, replicas, gpu_price) -> SelfHostedFleetConfig:
    gpus = replicas * tp
    # Up to GPUS_PER_SERVER GPUs a server, whole replicas per server; a small fleet is one
    # smaller server (the chassis price stays the same: a conservative assumption).
    per_server = min(GPUS_PER_SERVER // tp * tp, gpus)
    servers = max(1, math.ceil(gpus / per_server))
    return SelfHostedFleetConfig(
        name="candidate",
        gpu=gpu,
        servers=servers,
        gpus_per_server=per_server,
        tp=tp,
        precision=prec,
        gpu_price_usd=gpu_price,
    )


def owned_costs(cfg: SelfHostedFleetConfig, profile, span_s: float, util: float) -> dict:
    """Fixed cost over the span, power at `util`, and the upfront and monthly opex figures."""
    capex = capex_usd(cfg)
    fixed_per_s = (
        amortised_usd_per_year(capex, cfg.residual_frac, cfg.lifetime_years, cfg.cost_of_capital)
        / YEAR_S
        + cfg.colo_usd_per_month * cfg.servers / MONTH_S
    )
    n_gpus = cfg.servers * cfg.gpus_per_server

    def power_usd_per_s(u: float) -> float:
        watts = (n_gpus * profile.power_w(u) + cfg.host_power_w * cfg.servers) * cfg.pue
        return watts / 3.6e6 * cfg.electricity_usd_per_kwh

    return {
        "capex": capex,
        "fixed": fixed_per_s * span_s,
        "power": power_usd_per_s(util) * span_s,
        "idle_power": power_usd_per_s(0.0) * span_s,
        "monthly_opex": (cfg.colo_usd_per_month * cfg.servers) + power_usd_per_s(util) * MONTH_S,
    }


def purchase_candidates(
    rows: list[dict],
    sizer: Sizer,
    precisions: tuple[str, ...],
    c: AdviseConstraints,
    cheapest_api: Candidate | None,
) -> list[Candidate]:
    """Owned servers sized to the peak, and an owned base that overflows to the cheapest API."""
    if not c.purchase:
        return []
    stats = sizer.stats
    out: list[Candidate] = []
    for gpu, (price, prov) in sorted(purchase_prices(rows).items()):
        for tp in (t for t in TP_CHOICES if t <= GPUS_PER_SERVER):
            for prec in precisions:
                profile, cap = sizer.get(gpu, tp, prec)
                if cap is None:
                    continue
                base = dict(
                    provider="purchase",
                    term="purchase",
                    gpu=gpu,
                    tp=tp,
                    precision=prec,
                    capacity=cap,
                    price_source=prov,
                    assumptions=(PURCHASE_NOTE,),
                )
                shape = f"{tp}x {gpu} {prec}"
                if not cap.feasible:
                    cfg = _owned_fleet(gpu, tp, prec, 1, price)
                    out.append(
                        Candidate(
                            kind="self_hosted",
                            description=f"buy {shape}",
                            fleet=cfg,
                            estimate=Estimate(math.inf, math.inf, False, cap.why_not),
                            dedupe=("own", gpu, tp, prec),
                            **base,
                        )
                    )
                    continue
                peak = int(replicas_per_bin(stats, cap.rps).max())
                cfg = _owned_fleet(gpu, tp, prec, peak, price)
                replicas = cfg.servers * cfg.gpus_per_server // tp
                util = min(1.0, stats.mean_rate / (replicas * cap.rps / TARGET_UTIL))
                costs = owned_costs(cfg, profile, stats.span_s, util)
                out.append(
                    Candidate(
                        kind="self_hosted",
                        description=f"buy {cfg.servers} x {cfg.gpus_per_server}-GPU servers "
                        f"({replicas} x {shape}) at ${price:,.0f}/GPU",
                        fleet=cfg,
                        estimate=_gpu_estimate(
                            costs["fixed"] + costs["power"],
                            costs["fixed"] + costs["idle_power"],
                            cfg.servers * cfg.gpus_per_server,
                            c,
                        ),
                        upfront_usd=costs["capex"],
                        monthly_opex_usd=costs["monthly_opex"],
                        dedupe=("own", gpu, tp, prec),
                        **base,
                    )
                )
                if cheapest_api is not None and "mix" in c.kinds:
                    ttft = min(
                        (v for k, v in sizer.slo.items() if k.startswith("ttft_")), default=2.0
                    )
                    mix = _owned_with_overflow(
                        gpu, tp, prec, price, profile, cap, stats, c, cheapest_api, base, ttft
                    )
                    if mix is not None:
                        out.append(mix)
    return out


def _owned_with_overflow(gpu, tp, prec, price, profile, cap, stats, c, api, base, ttft):
    """An owned base sized to the mean traffic; queues beyond it overflow to the API."""
    n_base = max(1, math.ceil(stats.mean_rate / cap.rps))
    cfg = _owned_fleet(gpu, tp, prec, n_base, price)
    replicas = cfg.servers * cfg.gpus_per_server // tp
    if replicas >= int(replicas_per_bin(stats, cap.rps).max()):
        return None  # the base already covers the peak: the plain purchase is the same fleet
    saturated = replicas * cap.rps / TARGET_UTIL
    threshold = max(2, int(ttft / 2 * cap.rps / TARGET_UTIL))
    overflow_frac = float(
        (np.maximum(stats.rate_per_s - saturated, 0) * stats.bin_widths()).sum()
    ) / max(stats.requests, 1)
    util = min(1.0, stats.mean_rate * (1 - overflow_frac) / saturated)
    costs = owned_costs(cfg, profile, stats.span_s, util)
    api_cost = api.estimate.cost_usd * overflow_frac
    overflow = api.fleet
    cfg = SelfHostedFleetConfig(
        **{
            **{f: getattr(cfg, f) for f in ("name", "gpu", "servers", "gpus_per_server", "tp")},
            "precision": prec,
            "gpu_price_usd": price,
            "overflow": overflow,
            "overflow_queue_threshold": threshold,
        }
    )
    return Candidate(
        kind="mix",
        description=f"buy {replicas} x {tp}x {gpu} {prec} as a base, overflow to {api.provider} "
        f"{api.fleet.model} beyond {threshold} queued per replica",
        fleet=cfg,
        estimate=_gpu_estimate(
            costs["fixed"] + costs["power"] + api_cost,
            costs["fixed"] + costs["idle_power"],
            cfg.servers * cfg.gpus_per_server,
            c,
        ),
        upfront_usd=costs["capex"],
        monthly_opex_usd=costs["monthly_opex"],
        dedupe=("own+api", gpu, tp, prec, api.provider),
        **{**base, "assumptions": (PURCHASE_NOTE, *api.assumptions)},
    )
