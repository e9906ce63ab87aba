"""The advisor's one door into the rest of infercost: scenario loading, price resolution, the perf
model, workload draws and the simulator. When the typed scenario API lands, only this module
changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.advise.constraints import AdviseConstraints


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


def simulate(
    scenario, fleets: Sequence[Any], *, n: int, seed: int, workers: int = 1, executor=None
):
    """Simulate every fleet for `n` replications; returns (the `RunSummary` `sim run` makes,
    per-fleet lists of FleetResult by replication, CPU seconds the tasks took). Tasks are (fleet,
    replication) pairs on `executor` (default: a local pool of `workers` processes); every fleet
    is driven by the same stream (common random numbers across candidates), so the results do
    not depend on the executor or on which candidates share a batch."""
    from sim.backends import Executor
    from sim.run.replications import simulate_batch
    from sim.summary import summarize

    if executor is None:
        executor = Executor("process", workers=max(1, workers))  # one worker runs inline
    together = with_fleets(scenario, fleets)
    (reps,), cpu_s = simulate_batch(
        [together], n=n, seed=seed, executor=executor, common_stream=True
    )
    summary = summarize(together, reps, seed=seed)
    results = [[rep.fleets[k] for rep in reps] for k in range(len(fleets))]
    return summary, results, cpu_s


def open_warehouse(db_path: str | None):
    from warehouse import Warehouse

    return Warehouse(path=db_path, read_only=True)
