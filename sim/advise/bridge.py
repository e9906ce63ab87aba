"""The advisor's one door into the rest of infercost: scenario loading, price resolution, the perf
model, workload draws and the simulator. When the typed scenario API lands, only this module
changes.
"""

from __future__ import annotations

import dataclasses
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from sim.advise.constraints import AdviseConstraints, parse_constraints
from sim.errors import InputError

# A scenario for `sim advise` may name no fleet; the loader still wants one, so a placeholder is
# parsed and dropped again.
_PLACEHOLDER = {
    "name": "__advise_placeholder__",
    "kind": "api",
    "model": "placeholder",
    "price_usd_per_mtok_input": 1.0,
    "price_usd_per_mtok_output": 1.0,
}


def load_question(path: Path | str, overrides: Sequence[str] = ()):
    """(Scenario with the file's fleets, AdviseConstraints) from a scenario file and `--set`s.

    The `[advise]` table is taken out before the scenario loader sees it, and a file with no
    `[[fleet]]` is valid here.
    """
    from sim.scenario import apply_override, check_models_fit, parse_scenario

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(source, None, f"cannot read scenario: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, None, f"invalid TOML: {exc}") from None
    for item in overrides:
        apply_override(raw, item)
    constraints = parse_constraints(raw.pop("advise", None), source)
    no_fleets = not raw.get("fleet")
    if no_fleets:
        raw["fleet"] = [dict(_PLACEHOLDER)]
    overridden = {item.partition("=")[0].strip().rsplit(".", 1)[-1] for item in overrides}
    scenario = parse_scenario(raw, path, text, overridden=overridden)
    if no_fleets:
        clean = {k: v for k, v in scenario.raw.items() if k != "fleet"}
        scenario = dataclasses.replace(scenario, fleets=(), raw=clean)
    check_models_fit(scenario)
    return scenario, constraints


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
    from sim.run import _child
    from sim.traffic import build_workload

    seq = np.random.SeedSequence(seed).spawn(1)[0]
    return build_workload(
        dict(scenario.workload),
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
    """Simulate every fleet for `n` replications; returns (summary dict as `sim run` writes it,
    per-fleet lists of FleetResult by replication, CPU seconds the jobs took). Jobs are (fleet,
    replication) pairs spread over a process pool; the results do not depend on `workers`."""
    from sim.run import ReplicationResult, _pool_context, summarize

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
