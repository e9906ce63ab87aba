"""Replications of a scenario with independent random streams and common random numbers across
fleets, serially or in a process pool.

Stream layout (fixed, so serial and parallel runs agree): `SeedSequence(seed).spawn(n)` gives one
sequence per replication; inside replication r, child 0 draws the workload (shared by every fleet)
and child 1 + k drives fleet k.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from sim.engine.result import FleetResult
from sim.errors import InputError
from sim.scenario import Scenario, make_profile_factory
from sim.traffic.config import fit_context

Progress = Callable[[int, int], None]  # (fleet simulations done, total)


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


@functools.lru_cache(maxsize=16)
def max_context(model) -> int:
    """The served model's context window in tokens (from the perf catalog or its config)."""
    from sim.perf import load_model

    return int(load_model(model.config or model.name).max_context)


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
        scenario.workload,
        base_dir=scenario.base_dir,
        rng=np.random.default_rng(_child(seed_seq, 0)),
        source=str(scenario.path),
    )
    workload = fit_context(
        workload, max_context(scenario.model), scenario.model.context_overflow, str(scenario.path)
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
    about["cached_prompt_tokens"] = int(np.sum(workload.cached_prompt_tokens))
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
    resolved = resolve_prices(scenario, warehouse)
    check_priced_gpus(resolved)
    return resolved


def check_priced_gpus(scenario: Scenario) -> None:
    """A cloud fleet's `gpu` must be the GPU of the instance it is priced as (else it would run at
    one GPU's speed and pay another's price)."""
    from sim.gpu_match import check_gpu_matches_offer

    for i, fleet in enumerate(scenario.fleets):
        if fleet.kind == "cloud":
            check_gpu_matches_offer(
                fleet.gpu,
                scenario.prices.get(fleet.name, {}).get("gpu_model"),
                source=str(scenario.path),
                field=f"fleet[{i}].gpu",
                sku=fleet.instance,
            )


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
