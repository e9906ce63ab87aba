"""Run a scenario: replications with independent random streams and common random numbers
across fleets, summarised with confidence intervals; the library behind `sim run`.

Stream layout (fixed, so serial and parallel runs agree): `SeedSequence(seed).spawn(n)` gives one
sequence per replication; inside replication r, child 0 draws the workload (shared by every fleet)
and child 1 + k drives fleet k.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.result import DROPPED, FAILED, OK, UNFINISHED, FleetResult
from sim.errors import InputError
from sim.scenario import Scenario, make_profile_factory

Progress = Callable[[int, int], None]  # (fleet simulations done, total)

QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
SUMMARY_QUANTILES = ("p50", "p90", "p99")


@dataclass(frozen=True)
class Backend:
    """The parts a run calls; the default is the real simulator, tests swap in fakes.

    Every field must be a module-level function so the backend pickles into worker processes.
    """

    simulate_fleet: Callable[..., FleetResult]
    build_workload: Callable[..., Any]
    profile_factory: Callable[[Scenario], Callable]


def _real_simulate_fleet(*args, **kwargs) -> FleetResult:
    from sim.engine import simulate_fleet

    return simulate_fleet(*args, **kwargs)


def _real_build_workload(*args, **kwargs):
    from sim.traffic import build_workload

    return build_workload(*args, **kwargs)


def _lazy_profile_factory(scenario: Scenario) -> Callable:
    """Loads the model only when a GPU fleet first asks, so API-only scenarios need no perf model."""
    inner: Callable | None = None

    def factory(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
        nonlocal inner
        if inner is None:
            inner = make_profile_factory(scenario.model, scenario.path)
        return inner(gpu, tp, precision, mem_util, engine_profile=engine_profile)

    return factory


DEFAULT_BACKEND = Backend(_real_simulate_fleet, _real_build_workload, _lazy_profile_factory)


@dataclass
class ReplicationResult:
    replication: int
    fleets: list[FleetResult]
    workload: dict[str, Any] = dataclasses.field(default_factory=dict)  # name, requests, duration_s


def _child(seq: np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    # Built from entropy and spawn key rather than seq.spawn(), whose counter would make a second
    # call on the same object give different streams.
    return np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, k))


def run_replication(
    scenario: Scenario,
    replication: int,
    *,
    seed_seq: np.random.SeedSequence,
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> ReplicationResult:
    """One workload draw shared by all fleets (common random numbers), then each fleet simulated."""
    backend = backend or DEFAULT_BACKEND
    workload = backend.build_workload(
        dict(scenario.workload),
        base_dir=scenario.base_dir,
        rng=np.random.default_rng(_child(seed_seq, 0)),
        source=str(scenario.path),
    )
    factory = backend.profile_factory(scenario)
    fleets = []
    for k, cfg in enumerate(scenario.fleets):
        result = backend.simulate_fleet(
            cfg,
            workload,
            profile_factory=factory,
            rng=np.random.default_rng(_child(seed_seq, 1 + k)),
            window_s=scenario.window_s,
            horizon_s=scenario.horizon_s,
            progress=None,
        )
        fleets.append(result)
        if progress is not None:
            progress(1, len(scenario.fleets))
    about = {"name": workload.name, "requests": len(workload), "duration_s": workload.duration_s}
    return ReplicationResult(replication, fleets, about)


def _worker(scenario: Scenario, replication: int, seed_seq, backend):
    # InputError does not survive pickling (its __init__ takes four arguments), so it travels back
    # as plain fields and is raised again in the parent.
    try:
        return run_replication(scenario, replication, seed_seq=seed_seq, backend=backend)
    except InputError as exc:
        return ("input_error", exc.source, exc.field, exc.reason, exc.line)


def _pool_context():
    # Not fork: forking a process whose polars/numpy thread pools are running can deadlock. A fork
    # server that has imported the simulator once starts workers faster than spawn (0.5 s against
    # 1.2 s for two workers, measured on the 2-core machine).
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["sim.run", "sim.engine", "sim.perf", "sim.traffic"])
    return ctx


def ensure_prices(scenario: Scenario, warehouse: Any = None) -> Scenario:
    """Resolve prices once, in the calling process, so worker processes never open the warehouse."""
    from sim.pricing import needs_prices, resolve_prices

    if scenario.prices and not needs_prices(scenario):
        return scenario
    return resolve_prices(scenario, warehouse)


def run_replications(
    scenario: Scenario,
    *,
    n: int,
    seed: int,
    workers: int = 1,
    progress: Progress | None = None,
    backend: Backend | None = None,
    warehouse: Any = None,
) -> list[ReplicationResult]:
    """`n` replications from `SeedSequence(seed).spawn(n)`; identical whatever `workers` is."""
    if n < 1:
        raise InputError(str(scenario.path), "scenario.replications", f"must be >= 1, got {n}")
    if seed < 0:  # the file's seed is checked on load, so a negative one came from --seed
        raise InputError("--seed", None, f"must be >= 0 (numpy SeedSequence), got {seed}")
    scenario = ensure_prices(scenario, warehouse)
    seqs = np.random.SeedSequence(seed).spawn(n)
    workers = max(1, min(workers, n))
    if workers == 1:
        return [
            run_replication(scenario, r, seed_seq=seqs[r], progress=progress, backend=backend)
            for r in range(n)
        ]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        futures = [pool.submit(_worker, scenario, r, seqs[r], backend) for r in range(n)]
        results = []
        for future in futures:
            out = future.result()
            if isinstance(out, tuple) and out and out[0] == "input_error":
                raise InputError(out[1], out[2], out[3], line=out[4])
            results.append(out)
            if progress is not None:
                progress(len(scenario.fleets), len(scenario.fleets))
    return results


# ---------------------------------------------------------------------------------------------
# statistics

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (standard tables); scipy is only
# a test dependency, and tests/scenario checks this table against scipy.stats.t.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(df: int) -> float:
    """Two-sided 95% t quantile; beyond the table a Cornish-Fisher expansion (error < 1e-3)."""
    if df < 1:
        return math.nan
    if df <= len(_T95):
        return _T95[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(values: list[float] | np.ndarray) -> dict[str, Any]:
    """`{mean, ci95: [lo, hi] | None, values}` over replications, NaNs ignored in mean and CI."""
    vals = [float(v) for v in values]
    finite = np.array([v for v in vals if math.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return {"mean": None, "ci95": None, "values": [_clean(v) for v in vals]}
    mean = float(finite.mean())
    ci = None
    if len(finite) >= 2:
        half = t95(len(finite) - 1) * float(finite.std(ddof=1)) / math.sqrt(len(finite))
        ci = [mean - half, mean + half]
    return {"mean": mean, "ci95": ci, "values": [_clean(v) for v in vals]}


def _clean(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _percentile(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else math.nan


def replication_figures(fr: FleetResult, slo) -> dict[str, Any]:
    """The per-replication figures of one fleet that the summary averages."""
    ok = fr.status == OK
    n = len(fr.status)
    ttft = fr.ttft_s
    e2e = fr.e2e_s
    out_tokens = fr.output_tokens.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tokens > 1, (fr.finish_s - fr.first_token_s) / (out_tokens - 1), np.nan)
    per_metric = {"ttft": ttft, "e2e": e2e, "tpot": tpot}
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
    for metric, values in per_metric.items():
        good = values[ok & np.isfinite(values)]
        for qname, q in QUANTILES.items():
            fig[f"{metric}_{qname}_s"] = _percentile(good, q)
    meets_all = ok.copy()
    for key, limit in slo.targets_s.items():
        metric = key.split("_", 1)[0]
        with np.errstate(invalid="ignore"):
            within = ok & (per_metric[metric] <= limit)
        fig[f"attainment:{key}"] = float(within.mean()) if n else math.nan
        meets_all &= within
    fig["slo_attainment"] = float(meets_all.mean()) if n else math.nan
    return fig


def summarize(
    scenario: Scenario, reps: list[ReplicationResult], *, seed: int | None = None
) -> dict:
    """The content of summary.json (see docs/scenarios.md): per fleet, means with 95% CIs."""
    fleets = []
    for k, cfg in enumerate(scenario.fleets):
        results = [rep.fleets[k] for rep in reps]
        figs = [replication_figures(fr, scenario.slo) for fr in results]

        def col(key: str, figs=figs) -> list[float]:
            return [float(f[key]) for f in figs]

        entry: dict[str, Any] = {
            "name": cfg.name,
            "kind": cfg.kind,
            "total_cost_usd": mean_ci(col("total_cost_usd")),
            "usd_per_mtok_output": mean_ci(col("usd_per_mtok_output")),
            "usd_per_1k_requests": mean_ci(col("usd_per_1k_requests")),
            "success_rate": mean_ci(col("success_rate")),
            "slo_attainment": mean_ci(col("slo_attainment")),
            "slo_attainment_by_target": {
                key: mean_ci(col(f"attainment:{key}")) for key in scenario.slo.targets_s
            },
        }
        for metric in ("ttft", "e2e", "tpot"):
            qs = SUMMARY_QUANTILES + tuple(
                q
                for q in QUANTILES
                if f"{metric}_{q}_s" in scenario.slo.targets_s and q not in SUMMARY_QUANTILES
            )
            entry[f"{metric}_s"] = {q: _strip_values(mean_ci(col(f"{metric}_{q}_s"))) for q in qs}
        entry["meets_slo"] = _meets_slo(entry, scenario.slo)
        entry["requests"] = {
            key: float(np.mean(col(key)))
            for key in ("arrivals", "ok", "failed", "dropped", "unfinished")
        }
        keys = sorted({key for fr in results for key in fr.cost_breakdown_usd})
        entry["cost_breakdown_usd"] = {
            key: float(np.mean([fr.cost_breakdown_usd.get(key, 0.0) for fr in results]))
            for key in keys
        }
        entry["prices"] = scenario.prices.get(cfg.name, {})
        fleets.append(entry)
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "workload": _workload_summary(reps),
        "seed": scenario.seed if seed is None else seed,
        "replications": len(reps),
        "price_as_of": scenario.price_as_of,
        "slo": {**scenario.slo.targets_s, "min_success_rate": scenario.slo.min_success_rate},
        "cheapest_meeting_slo": _cheapest(fleets),
        "fleets": fleets,
    }


def _workload_summary(reps: list[ReplicationResult]) -> dict[str, Any]:
    names = sorted({str(rep.workload.get("name", "")) for rep in reps})
    return {
        "name": names[0] if len(names) == 1 else names,
        "requests": mean_ci([rep.workload.get("requests", math.nan) for rep in reps]),
        "duration_s": mean_ci([rep.workload.get("duration_s", math.nan) for rep in reps]),
    }


def _strip_values(stat: dict) -> dict:
    return {"mean": stat["mean"], "ci95": stat["ci95"]}


def _meets_slo(entry: dict, slo) -> bool:
    """Every latency target met by the replication mean of that percentile, and enough successes."""
    for key, limit in slo.targets_s.items():
        metric, q, _ = key.split("_")
        mean = entry[f"{metric}_s"][q]["mean"]
        if mean is None or mean > limit:
            return False
    success = entry["success_rate"]["mean"]
    return success is not None and success >= slo.min_success_rate


def _cheapest(fleets: list[dict]) -> str | None:
    best, best_cost = None, math.inf
    for entry in fleets:
        cost = entry["total_cost_usd"]["mean"]
        if entry["meets_slo"] and cost is not None and cost < best_cost:
            best, best_cost = entry["name"], cost
    return best


# ---------------------------------------------------------------------------------------------
# a whole run


@dataclass
class RunOutput:
    run_id: str
    run_dir: Path
    summary: dict
    paths: dict[str, Path]
    report_path: Path | None = None
    recorded: bool = False


def default_workers(n: int) -> int:
    return max(1, min(n, os.cpu_count() or 1))


def run_scenario(
    scenario: Scenario,
    *,
    out_dir: Path | None = None,
    seed: int | None = None,
    replications: int | None = None,
    workers: int | None = None,
    warehouse: Any = None,
    record: bool = True,
    progress: Progress | None = None,
    backend: Backend | None = None,
    db_path: str | None = None,
    report: bool = True,
) -> RunOutput:
    """Resolve prices, run the replications, write the run directory and record it in the warehouse.

    `warehouse` is an open `warehouse.Warehouse` (read-write when `record`); when None one is opened
    on `db_path` (None = $INFERCOST_DB or the per-user default) only if prices or recording need it.
    """
    from sim import output
    from sim.pricing import needs_prices

    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    seed = scenario.seed if seed is None else seed
    n = scenario.replications if replications is None else replications
    if n < 1:
        raise InputError("--replications", None, f"must be >= 1, got {n}")
    workers = default_workers(n) if workers is None else workers
    scenario = dataclasses.replace(scenario, seed=seed, replications=n)

    output.check_out_dir(out_dir)
    owned = None
    if warehouse is None and (record or needs_prices(scenario)):
        from warehouse import Warehouse

        warehouse = owned = Warehouse(path=db_path, read_only=not record)
    try:
        scenario = ensure_prices(scenario, warehouse)
        reps = run_replications(
            scenario, n=n, seed=seed, workers=workers, progress=progress, backend=backend
        )
        summary = summarize(scenario, reps, seed=seed)
        run_dir, run_id = output.make_run_dir(scenario.name, out_dir, started_at)
        paths = output.write_run(
            run_dir, scenario, reps, summary, started_at=started_at, run_id=run_id
        )
        recorded = False
        if record:
            output.record_run(warehouse, run_id, scenario, reps, summary, started_at=started_at)
            recorded = True
    finally:
        if owned is not None and hasattr(owned, "close"):
            owned.close()
    report_path = output.write_report_if_available(run_dir) if report else None
    return RunOutput(run_id, run_dir, summary, paths, report_path, recorded)
