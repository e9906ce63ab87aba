"""A synthetic run directory in the exact shape `sim run` writes, for tests, benchmarks and demos.

Numbers are invented (smooth diurnal traffic plus noise from a seeded Generator); nothing here is
a simulation result. Never shown to users as one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sim.engine.result import TIMESERIES_COLUMNS
from sim.outputs.rundir import write_json
from sim.summary import (
    FleetEvents,
    FleetSummary,
    RunSummary,
    Slo,
    Stat,
    Utilisation,
    WorkloadSummary,
    cheapest,
    stat,
)

FLEETS = (
    ("openai-api", "api"),
    ("cloud-h100", "cloud"),
    ("own-h100", "self_hosted"),
)
# Every per-window column of a real run (sim/engine/result.py), in its order.
SERIES_METRICS = tuple(c for c in TIMESERIES_COLUMNS if c not in ("window_start_s", "window_end_s"))


def write_synthetic_run(
    run_dir: Path,
    *,
    fleets: tuple[tuple[str, str], ...] = FLEETS,
    replications: int = 5,
    windows: int = 60,
    window_s: float = 60.0,
    seed: int = 0,
    cost_scale: dict[str, float] | None = None,
    meets_slo: dict[str, bool] | None = None,
    name: str = "synthetic",
) -> Path:
    """Write scenario.resolved.json, summary.json, timeseries/bands/requests parquet into `run_dir`.

    `cost_scale` multiplies a fleet's costs (to build a second run that differs); `meets_slo`
    overrides the SLO verdict per fleet (default: all meet it).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cost_scale = cost_scale or {}
    meets_slo = meets_slo or {}
    starts = np.arange(windows) * window_s
    diurnal = 1.0 + 0.6 * np.sin(np.linspace(0, 2 * np.pi, windows))
    base_cost = {"api": 0.9, "cloud": 0.7, "self_hosted": 0.5}
    series = []
    for rep in range(replications):
        for fleet, kind in fleets:
            arrivals = rng.poisson(100 * diurnal)
            scale = cost_scale.get(fleet, 1.0)
            if kind == "api":
                cost = arrivals * 0.002 * base_cost[kind] * scale
                replicas = np.zeros(windows)
                util = np.full(windows, np.nan)
                events = _events(None, rng, n=windows)
            else:
                replicas = np.ceil(diurnal * 2) if kind == "cloud" else np.full(windows, 4.0)
                events = _events(replicas if kind == "cloud" else None, rng, n=windows)
                cost = replicas * base_cost[kind] * scale * window_s / 3600 * 10
                util = np.clip(diurnal / 2 + rng.normal(0, 0.05, windows), 0, 1)
            ttft50 = 0.2 * diurnal * rng.lognormal(0, 0.1, windows)
            e2e50 = 4.0 * diurnal * rng.lognormal(0, 0.1, windows)
            tpot50 = 0.03 * diurnal * rng.lognormal(0, 0.1, windows)
            series.append(
                pl.DataFrame(
                    {
                        "replication": np.full(windows, rep),
                        "fleet": [fleet] * windows,
                        "kind": [kind] * windows,
                        "window_start_s": starts,
                        "window_end_s": starts + window_s,
                        "arrivals": arrivals,
                        "completions": arrivals,
                        "throttled": np.zeros(windows, dtype=np.int64),
                        "failed": np.zeros(windows, dtype=np.int64),
                        **events,
                        "queue_len": rng.exponential(2.0, windows),
                        "replicas": replicas,
                        "busy_fraction": util,
                        "cost_usd": cost,
                        "cumulative_cost_usd": np.cumsum(cost),
                        "ttft_p50_s": ttft50,
                        "ttft_p90_s": ttft50 * 2,
                        "ttft_p99_s": ttft50 * 4,
                        "tpot_p50_s": tpot50,
                        "tpot_p90_s": tpot50 * 1.3,
                        "tpot_p99_s": tpot50 * 2,
                        "e2e_p50_s": e2e50,
                        "e2e_p90_s": e2e50 * 1.5,
                        "e2e_p99_s": e2e50 * 2.5,
                    }
                )
            )
    timeseries = pl.concat(series)
    timeseries.write_parquet(run_dir / "timeseries.parquet")
    _bands(timeseries).write_parquet(run_dir / "bands.parquet")
    _requests(fleets, rng).write_parquet(run_dir / "requests.parquet")

    slo = Slo({"ttft_p99_s": 2.0, "e2e_p99_s": 30.0}, 0.99)
    summary_fleets = []
    for fleet, kind in fleets:
        part = timeseries.filter(pl.col("fleet") == fleet)
        totals = (
            part.group_by("replication")
            .agg(pl.col("cost_usd").sum())
            .sort("replication")["cost_usd"]
        )
        requests = (
            part.group_by("replication")
            .agg(pl.col("arrivals").sum())
            .sort("replication")["arrivals"]
        )
        per_1k = (totals / requests * 1000).to_numpy()
        summary_fleets.append(
            FleetSummary(
                name=fleet,
                kind=kind,
                total_cost_usd=_stat(totals.to_numpy()),
                usd_per_mtok_output=_stat(per_1k * 2.5),
                usd_per_1k_requests=_stat(per_1k),
                success_rate=_stat(np.ones(replications)),
                slo_attainment=_stat(np.full(replications, 0.995)),
                slo_attainment_by_target={},
                latency_s={
                    metric: {
                        p: _stat(part[f"{metric}_{p}_s"].to_numpy()[:replications])
                        for p in ("p50", "p90", "p99")
                    }
                    for metric in ("ttft", "tpot", "e2e")
                },
                meets_slo=meets_slo.get(fleet, True),
                requests={
                    "arrivals": float(requests.sum()),
                    "ok": float(requests.sum()),
                    "failed": 0.0,
                    "dropped": 0.0,
                    "unfinished": 0.0,
                },
                cost_breakdown_usd={"tokens" if kind == "api" else "compute": float(totals.mean())},
                prices=_prices(kind),
                events=_summary_events(part, kind, replications),
                utilisation=None if kind == "api" else Utilisation(0.6, 0.2, 0.1, 900.0, 6000.0),
            )
        )
    summary = RunSummary(
        scenario=name,
        description="",
        workload=WorkloadSummary("synthetic", stat([0.0]), stat([windows * window_s])),
        seed=seed,
        replications=replications,
        price_as_of="2025-07-01",
        slo=slo,
        fleets=tuple(summary_fleets),
        cheapest_meeting_slo=cheapest(summary_fleets),
    )
    write_json(run_dir / "summary.json", summary.to_json())
    slo = slo.to_json()
    resolved = {
        "name": name,
        "seed": seed,
        "replications": replications,
        "price_as_of": "2025-07-01",
        "workload": {"type": "synthetic", "rate_per_s": 1.7},
        "model": {"name": "llama-3.1-70b"},
        "slo": slo,
        "fleets": [{"name": f, "kind": k, "prices": _prices(k)} for f, k in fleets],
    }
    write_json(run_dir / "scenario.resolved.json", resolved)
    return run_dir


def _summary_events(part: pl.DataFrame, kind: str, replications: int) -> FleetEvents:
    """The invented per-window events summed per replication, averaged; None where the kind
    cannot have them (as `sim.engine.events` reports them)."""

    def mean(column: str) -> float:
        return float(part[column].sum()) / replications

    if kind == "api":
        return FleetEvents(throttled=mean("throttled"), retries=0.0)
    gpu = {"preemptions": mean("preemptions"), "recomputes": mean("preemptions")}
    if kind != "cloud":
        return FleetEvents(**gpu)
    scaling = {k: mean(k) for k in ("scale_up", "scale_down", "cold_starts", "spot_kills")}
    return FleetEvents(**gpu, **scaling, cold_start_waits=0.0)


def _events(replicas, rng: np.random.Generator, n: int = 0) -> dict[str, np.ndarray]:
    """Invented per-window events: scaling where the replica count steps, a few preemptions."""
    n = n or len(replicas)
    zero = np.zeros(n, dtype=np.int64)
    out = {k: zero.copy() for k in ("scale_up", "scale_down", "cold_starts", "preemptions", "spot_kills")}  # fmt: skip
    if replicas is not None:
        step = np.diff(replicas, prepend=replicas[0])
        out["scale_up"] = (step > 0).astype(np.int64)
        out["cold_starts"] = np.maximum(step, 0).astype(np.int64)
        out["scale_down"] = (step < 0).astype(np.int64)
        out["preemptions"] = rng.poisson(0.3, n)
    return out


def _stat(values: np.ndarray) -> Stat:
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return Stat(mean, (mean - half, mean + half), tuple(values.tolist()))


def _prices(kind: str) -> dict:
    common = {"region": "", "term": "on_demand", "source": "synthetic", "valid_from": "2025-06-01"}
    sku = {"api": "gpt-4o-mini", "cloud": "p5.48xlarge", "self_hosted": "H100-SXM"}[kind]
    provider = {"api": "openai", "cloud": "aws", "self_hosted": "purchase"}[kind]
    return {"provider": provider, "sku": sku, **common}


def _bands(timeseries: pl.DataFrame) -> pl.DataFrame:
    long = timeseries.unpivot(
        index=["fleet", "window_start_s", "replication"],
        on=list(SERIES_METRICS),
        variable_name="metric",
    ).with_columns(pl.col("value").cast(pl.Float64).fill_nan(None))
    return (
        long.group_by(["fleet", "window_start_s", "metric"], maintain_order=True)
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").quantile(0.05, "linear").alias("p5"),
            pl.col("value").quantile(0.5, "linear").alias("p50"),
            pl.col("value").quantile(0.95, "linear").alias("p95"),
        )
        .sort(["fleet", "metric", "window_start_s"])
    )


def _requests(fleets, rng: np.random.Generator, n: int = 20) -> pl.DataFrame:
    parts = []
    for fleet, _ in fleets:
        arrival = np.sort(rng.uniform(0, 600, n))
        parts.append(
            pl.DataFrame(
                {
                    "replication": np.zeros(n, dtype=np.int64),
                    "fleet": [fleet] * n,
                    "request": np.arange(n),
                    "arrival_s": arrival,
                    "start_s": arrival + 0.01,
                    "first_token_s": arrival + 0.3,
                    "finish_s": arrival + 4.0,
                    "prompt_tokens": np.full(n, 500),
                    "output_tokens": np.full(n, 200),
                    "status": ["ok"] * n,
                    "attempts": np.ones(n, dtype=np.int64),
                    "served_by": [fleet] * n,
                    "cost_usd": np.full(n, 0.001),
                }
            )
        )
    return pl.concat(parts)
