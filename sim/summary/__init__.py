"""Typed results of a run (`RunSummary`, `FleetSummary`, `Stat`), how they are built from the
engine's per-request results, and the one SLO rule and cheapest-fleet rule."""

from sim.summary.build import replication_figures, stat, summarize
from sim.summary.records import (
    LATENCY_METRICS,
    QUANTILES,
    REQUEST_COUNTS,
    SUMMARY_QUANTILES,
    FleetEvents,
    FleetSummary,
    KvLinkSummary,
    PoolSummary,
    RunSummary,
    Slo,
    SloWindows,
    Stat,
    Utilisation,
    WorkloadSummary,
    cheapest,
    meets_slo,
    slo_failures,
)

__all__ = [
    "LATENCY_METRICS",
    "QUANTILES",
    "REQUEST_COUNTS",
    "SUMMARY_QUANTILES",
    "FleetEvents",
    "FleetSummary",
    "KvLinkSummary",
    "PoolSummary",
    "RunSummary",
    "Slo",
    "SloWindows",
    "Stat",
    "Utilisation",
    "WorkloadSummary",
    "cheapest",
    "meets_slo",
    "replication_figures",
    "slo_failures",
    "stat",
    "summarize",
]
