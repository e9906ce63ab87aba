"""The advisor's one door into the rest of infercost: scenario loading, price resolution, the perf
model, workload draws and the simulator. When the typed scenario API lands, only this module
changes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sim.advise.constraints import AdviseConstraints
from sim.errors import InputError


def load_question(path: Path | str, overrides: Sequence[str] = ()):
    """(Scenario with the file's fleets, its `[advise]` constraints) from a scenario file and
    `--set`s; a file with no `[[fleet]]` is valid here."""
    from sim.scenario import load_scenario

    scenario = load_scenario(path, list(overrides), require_fleets=False)
    return scenario, scenario.advise


def with_fleets(scenario, fleets: Sequence[Any]):
    """A copy of `scenario` that runs `fleets` (prices already resolved)."""
    return dataclasses.replace(scenario, fleets=tuple(fleets))


def resolve_scenario_fleets(scenario, warehouse) -> tuple[Any, dict[str, dict]]:
    """The scenario's own fleets with prices from the warehouse, each cloud fleet's GPU checked
    against the priced instance's GPU."""
    from sim.gpu_match import check_gpu_matches_offer
    from sim.pricing import resolve_prices

    if not scenario.fleets:
        return scenario, {}
    resolved = resolve_prices(scenario, warehouse)
    for i, f in enumerate(resolved.fleets):
        prov = resolved.prices.get(f.name, {})
        if f.kind == "cloud":
            check_gpu_matches_offer(
                f.gpu,
                prov.get("gpu_model"),
                source=str(scenario.path),
                field=f"fleet[{i}].gpu",
                sku=f.instance,
            )
    return resolved, dict(resolved.prices)


def price_date(scenario) -> Any:
    """The warehouse's `as_of` for the scenario's price date (None = latest)."""
    from sim.pricing import as_of_arg

    return as_of_arg(scenario.price_as_of)


def profile_factory(scenario) -> Callable:
    """`factory(gpu, tp, precision, mem_util)` -> ServingProfile for the scenario's model."""
    from sim.scenario import make_profile_factory

    return make_profile_factory(scenario.model, scenario.path)


def replications(scenario, constraints: AdviseConstraints) -> int:
    return constraints.replications or scenario.replications


def first_workload(scenario, seed: int):
    """The workload of replication 0, drawn exactly as `sim run` draws it."""
    from sim.run.replications import _child
    from sim.traffic import build_workload

    seq = np.random.SeedSequence(seed).spawn(1)[0]
    return build_workload(
        scenario.workload,
        base_dir=scenario.base_dir,
        rng=np.random.default_rng(_child(seq, 0)),
        source=str(scenario.path),
    )


def _job(scenario, fleet, replication: int, seed: int, n: int):
    """One fleet, one replication: a one-fleet copy of the scenario through `sim run`'s code, so
    every candidate sees the same workload draw and the same fleet stream (common random numbers)."""
    from sim.run import run_replication

    seqs = np.random.SeedSequence(seed).spawn(n)
    cpu0 = time.process_time()
    try:
        rep = run_replication(
            with_fleets(scenario, [fleet]), replication, seed_seq=seqs[replication]
        )
    except InputError as exc:  # InputError does not pickle; it travels back as fields
        return ("input_error", exc.source, exc.field, exc.reason, exc.line)
    return rep, time.process_time() - cpu0


def simulate(scenario, fleets: Sequence[Any], *, n: int, seed: int, workers: int = 1):
    """Simulate every fleet for `n` replications; returns (the `RunSummary` `sim run` makes,
    per-fleet lists of FleetResult by replication, CPU seconds the jobs took). Jobs are (fleet,
    replication) pairs spread over a process pool; the results do not depend on `workers`."""
    from sim.run.replications import ReplicationResult, _pool_context
    from sim.summary import summarize

    jobs = [(k, r) for k in range(len(fleets)) for r in range(n)]
    if workers <= 1 or len(jobs) <= 1:
        outs = [_job(scenario, fleets[k], r, seed, n) for k, r in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
            futures = [pool.submit(_job, scenario, fleets[k], r, seed, n) for k, r in jobs]
            outs = [f.result() for f in futures]
    for out in outs:
        if isinstance(out, tuple) and out and out[0] == "input_error":
            raise InputError(out[1], out[2], out[3], line=out[4])
    by = {job: out[0] for job, out in zip(jobs, outs, strict=True)}
    cpu_s = sum(out[1] for out in outs)
    reps = [
        ReplicationResult(
            r, [by[(k, r)].fleets[0] for k in range(len(fleets))], by[(0, r)].workload
        )
        for r in range(n)
    ]
    summary = summarize(with_fleets(scenario, fleets), reps, seed=seed)
    results = [[rep.fleets[k] for rep in reps] for k in range(len(fleets))]
    return summary, results, cpu_s


def open_warehouse(db_path: str | None):
    from warehouse import Warehouse

    return Warehouse(path=db_path, read_only=True)
