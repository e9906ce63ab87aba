"""Turn replications' per-request results into a `RunSummary`: per-replication figures first,
then their means with 95% CIs across replications."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.engine.result import DROPPED, FAILED, OK, UNFINISHED, FleetResult
from sim.stats import mean_ci, percentile
from sim.summary.records import (
    HOURS_PER_MONTH,
    QUANTILES,
    REQUEST_COUNTS,
    SUMMARY_QUANTILES,
    ApiCacheSummary,
    FleetEvents,
    FleetSummary,
    KvLinkSummary,
    PoolSummary,
    PrefixCacheSummary,
    RunSummary,
    Slo,
    SloWindows,
    Stat,
    Utilisation,
    WorkloadSummary,
    cheapest,
    meets_slo,
)


def stat(values, *, keep_values: bool = True) -> Stat:
    mean, ci, cleaned = mean_ci(values)
    return Stat(mean, ci, cleaned if keep_values else None)


def replication_figures(fr: FleetResult, slo: Slo, span_s: float = math.nan) -> dict[str, Any]:
    """The per-replication figures of one fleet that the summary averages; `span_s` is the
    simulated span the cost per hour and month refer to (the workload's duration)."""
    ok = fr.status == OK
    n = len(fr.status)
    out_tokens = fr.output_tokens.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tokens > 1, (fr.finish_s - fr.first_token_s) / (out_tokens - 1), np.nan)
    per_metric = {"ttft": fr.ttft_s, "e2e": fr.e2e_s, "tpot": tpot}
    fig: dict[str, Any] = {
        "total_cost_usd": float(fr.total_cost_usd),
        "arrivals": n,
        "ok": int(ok.sum()),
        "failed": int((fr.status == FAILED).sum()),
        "dropped": int((fr.status == DROPPED).sum()),
        "unfinished": int((fr.status == UNFINISHED).sum()),
        "success_rate": float(ok.mean()) if n else math.nan,
    }
    ok_out_mtok = float(out_tokens[ok].sum()) / 1e6
    fig["usd_per_mtok_output"] = fr.total_cost_usd / ok_out_mtok if ok_out_mtok > 0 else math.nan
    fig["usd_per_1k_requests"] = fr.total_cost_usd / fig["ok"] * 1000 if fig["ok"] else math.nan
    ok_mtok = ok_out_mtok + float(fr.prompt_tokens[ok].astype(np.float64).sum()) / 1e6
    fig["usd_per_mtok"] = fr.total_cost_usd / ok_mtok if ok_mtok > 0 else math.nan
    hours = span_s / 3600
    fig["usd_per_hour"] = fr.total_cost_usd / hours if hours > 0 else math.nan
    fig["usd_per_month"] = fig["usd_per_hour"] * HOURS_PER_MONTH
    for metric, values in per_metric.items():
        good = values[ok & np.isfinite(values)]
        for qname, q in QUANTILES.items():
            fig[f"{metric}_{qname}_s"] = percentile(good, q)
    meets_all = ok.copy()
    for key, limit in slo.targets_s.items():
        metric = key.split("_", 1)[0]
        with np.errstate(invalid="ignore"):
            within = ok & (per_metric[metric] <= limit)
        fig[f"attainment:{key}"] = float(within.mean()) if n else math.nan
        meets_all &= within
    fig["slo_attainment"] = float(meets_all.mean()) if n else math.nan
    return fig


def fleet_summary(
    cfg, results: list[FleetResult], slo: Slo, prices: dict, spans_s=None
) -> FleetSummary:
    spans_s = spans_s or [math.nan] * len(results)
    figs = [
        # A streamed fleet (`StreamResult`) carries its figures as aggregates.
        fr.figures(span) if hasattr(fr, "aggregate") else replication_figures(fr, slo, span)
        for fr, span in zip(results, spans_s, strict=True)
    ]

    def col(key: str) -> list[float]:
        return [float(f[key]) for f in figs]

    latency = {}
    for metric in ("ttft", "e2e", "tpot"):
        extra = tuple(
            q
            for q in QUANTILES
            if f"{metric}_{q}_s" in slo.targets_s and q not in SUMMARY_QUANTILES
        )
        latency[metric] = {
            q: stat(col(f"{metric}_{q}_s"), keep_values=False) for q in SUMMARY_QUANTILES + extra
        }
    keys = sorted({key for fr in results for key in fr.cost_breakdown_usd})
    metas = [fr.meta or {} for fr in results]
    utilisation = [m["utilisation"] for m in metas if m.get("utilisation")]
    entry = FleetSummary(
        name=cfg.name,
        kind=cfg.kind,
        total_cost_usd=stat(col("total_cost_usd")),
        usd_per_mtok_output=stat(col("usd_per_mtok_output")),
        usd_per_1k_requests=stat(col("usd_per_1k_requests")),
        success_rate=stat(col("success_rate")),
        slo_attainment=stat(col("slo_attainment")),
        slo_attainment_by_target={key: stat(col(f"attainment:{key}")) for key in slo.targets_s},
        latency_s=latency,
        meets_slo=False,
        requests={key: float(np.mean(col(key))) for key in REQUEST_COUNTS},
        cost_breakdown_usd={
            key: float(np.mean([fr.cost_breakdown_usd.get(key, 0.0) for fr in results]))
            for key in keys
        },
        prices=prices,
        usd_per_mtok=stat(col("usd_per_mtok")),
        usd_per_hour=stat(col("usd_per_hour")),
        usd_per_month=stat(col("usd_per_month")),
        prefix_cache=_cache_part(PrefixCacheSummary, [_prefix_figures(fr) for fr in results]),
        api_cache=_cache_part(ApiCacheSummary, [fr.meta for fr in results]),
        events=FleetEvents.over_replications([m.get("event_counts") or {} for m in metas]),
        utilisation=Utilisation.over_replications(utilisation) if utilisation else None,
        slo_windows=slo_windows([fr.timeseries for fr in results], slo),
        **_disaggregation(metas),
    )
    return _with_verdict(entry, slo)


def _disaggregation(metas: list[dict]) -> dict:
    """`pools` and `kv_link` of a disaggregated fleet over replications, from each
    replication's `meta["pools"]` / `meta["kv_link"]` (DisaggFleet.pool_meta); {} otherwise."""
    if not metas or not all(m.get("pools") for m in metas):
        return {}

    def mean(values) -> float:
        return float(np.mean([float(v) for v in values]))

    pools = {}
    for name, first in metas[0]["pools"].items():
        per_rep = [m["pools"][name] for m in metas]
        kv = [p["kv_capacity_tokens"] for p in per_rep if p.get("kv_capacity_tokens") is not None]
        pools[name] = PoolSummary(
            gpu=str(first["gpu"]),
            tp=int(first["tp"]),
            replicas_launched=mean(p["replicas_launched"] for p in per_rep),
            busy_fraction=mean(p["gpu_util"] for p in per_rep),
            cost_usd=stat([float(p["cost_usd"]) for p in per_rep]),
            kv_capacity_tokens=mean(kv) if kv else None,
        )
    links = [m["kv_link"] for m in metas if m.get("kv_link")]
    kv_link = None
    if links:
        kv_link = KvLinkSummary(
            kind=str(links[0]["kind"]),
            gbps=float(links[0]["gbps"]),
            latency_s=float(links[0]["latency_s"]),
            transfers=mean(x["transfers"] for x in links),
            mean_transfer_s=mean(x["mean_transfer_s"] for x in links),
        )
    return {"pools": pools, "kv_link": kv_link}


def _prefix_figures(fr: FleetResult) -> dict:
    prefix = fr.meta.get("prefix_cache")
    if prefix is None:
        return {}
    return {
        "prefix_hit_rate_tokens": prefix["hit_rate_tokens"],
        "prefix_hit_rate_requests": prefix["hit_rate_requests"],
        "prefix_evictions": prefix["evicted_blocks"],
        "prefix_gpu_s_saved": prefix["gpu_s_saved"],
    }


def _cache_part(cls, figs: list[dict]):
    """`cls` (a summary of cache figures) over the replications' `figs`, or None if one lacks
    them (the fleet has no such cache: a GPU fleet without engine.prefix_cache = true)."""
    names = list(cls.__dataclass_fields__)
    if not figs or any(name not in f for f in figs for name in names):
        return None
    return cls(**{name: stat([float(f[name]) for f in figs]) for name in names})


def window_misses(ts, slo: Slo) -> tuple[int, int] | None:
    """(windows that missed, windows judged) of one replication's time series: see `SloWindows`.
    None when the SLO names no latency percentile the time series has per window."""
    judged_targets = [
        (f"{key.rsplit('_', 1)[0]}_s", limit)
        for key, limit in slo.targets_s.items()
        if f"{key.rsplit('_', 1)[0]}_s" in ts.columns
    ]
    if not judged_targets:
        return None
    judged = ts["completions"].to_numpy() > 0
    missed = np.zeros(len(judged), dtype=bool)
    for column, limit in judged_targets:
        values = ts[column].to_numpy().astype(np.float64)
        with np.errstate(invalid="ignore"):
            missed |= judged & (values > limit)
    return int(missed.sum()), int(judged.sum())


def slo_windows(timeseries: list, slo: Slo) -> SloWindows | None:
    """`SloWindows` over replications' time series (means of the per-replication counts)."""
    per_rep = [window_misses(ts, slo) for ts in timeseries]
    if not per_rep or any(m is None for m in per_rep):
        return None
    widths = [float((ts["window_end_s"] - ts["window_start_s"]).max()) for ts in timeseries if ts.height]  # fmt: skip
    return SloWindows(
        missed=float(np.mean([m[0] for m in per_rep])),
        judged=float(np.mean([m[1] for m in per_rep])),
        windows=float(np.mean([ts.height for ts in timeseries])),
        window_s=max(widths) if widths else None,
    )


def _with_verdict(entry: FleetSummary, slo: Slo) -> FleetSummary:
    from dataclasses import replace

    return replace(entry, meets_slo=meets_slo(entry, slo))


def summarize(scenario, reps, *, seed: int | None = None, warnings=()) -> RunSummary:
    """The run's `RunSummary` (summary.json, see docs/scenarios.md): per fleet, means with 95% CIs."""
    spans = [float(rep.workload.get("duration_s", math.nan)) for rep in reps]
    fleets = tuple(
        fleet_summary(
            cfg,
            [rep.fleets[k] for rep in reps],
            scenario.slo,
            scenario.prices.get(cfg.name, {}),
            spans,
        )
        for k, cfg in enumerate(scenario.fleets)
    )
    names = sorted({str(rep.workload.get("name", "")) for rep in reps})
    workload = WorkloadSummary(
        name=names[0] if len(names) == 1 else names,
        requests=stat([rep.workload.get("requests", math.nan) for rep in reps]),
        duration_s=stat([rep.workload.get("duration_s", math.nan) for rep in reps]),
        cached_prompt_tokens=stat(
            [rep.workload.get("cached_prompt_tokens", math.nan) for rep in reps]
        ),
    )
    streamed = any(hasattr(fr, "aggregate") for rep in reps for fr in rep.fleets)
    warnings = (*warnings, *_memory_warning(scenario, streamed, workload.requests.mean))
    return RunSummary(
        scenario=scenario.name,
        description=scenario.description,
        workload=workload,
        seed=scenario.seed if seed is None else seed,
        replications=len(reps),
        price_as_of=scenario.price_as_of,
        slo=scenario.slo,
        fleets=fleets,
        cheapest_meeting_slo=cheapest(fleets),
        warnings=tuple(warnings),
        engine_path="streaming" if streamed else "exact",
    )


def _memory_warning(scenario, streamed: bool, requests: float | None) -> list[str]:
    """A run above the `engine_path = "auto"` threshold that kept every request in memory: say
    why (a fleet that cannot stream, or engine_path = "exact" asked for)."""
    from sim.engine.streaming import (
        AUTO_STREAMING_REQUESTS,
        EXACT_BYTES_PER_REQUEST,
        cannot_stream,
    )

    if streamed or requests is None or not requests > AUTO_STREAMING_REQUESTS:
        return []
    reasons = [r for r in map(cannot_stream, scenario.fleets) if r is not None]
    why = reasons[0] if reasons else 'engine_path = "exact" asked for'
    return [
        f"warning: {requests:,.0f} requests per replication ran with every request in memory "
        f"(about {EXACT_BYTES_PER_REQUEST * requests * len(scenario.fleets) / 1e9:.1f} GB); not streamed: {why}"
    ]
