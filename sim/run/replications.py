"""Replications of a scenario with independent random streams and common random numbers across
fleets, serially or in a process pool.

Stream layout (fixed, so serial and parallel runs agree): `SeedSequence(seed).spawn(n)` gives one
sequence per replication; inside replication r, child 0 draws the workload (shared by every fleet)
and child 1 + k drives fleet k.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.backends import Executor
from sim.engine.result import FleetResult
from sim.engine.rows import DEFAULT_REQUESTS
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


def build_replication_workload(
    scenario: Scenario, seed_seq: np.random.SeedSequence, backend: Backend | None = None
):
    """Replication `seed_seq`'s workload (child stream 0), fitted to the model's context."""
    backend = backend or DEFAULT_BACKEND
    workload = backend.build_workload(
        scenario.workload,
        base_dir=scenario.base_dir,
        rng=np.random.default_rng(_child(seed_seq, 0)),
        source=str(scenario.path),
    )
    return fit_context(
        workload, max_context(scenario.model), scenario.model.context_overflow, str(scenario.path)
    )


def simulate_one_fleet(
    scenario: Scenario,
    k: int,
    workload,
    seed_seq: np.random.SeedSequence,
    backend: Backend | None = None,
    stream: int | None = None,
) -> FleetResult:
    """Fleet `k` of the scenario against one replication's workload, driven by child stream
    1 + `stream` (default: 1 + k) of the replication's seed sequence."""
    backend = backend or DEFAULT_BACKEND
    return backend.simulate_fleet(
        scenario.fleets[k],
        workload,
        profile_factory=backend.profile_factory(scenario),
        rng=_fleet_rng(seed_seq, k, stream),
        window_s=scenario.window_s,
        horizon_s=scenario.horizon_s,
        progress=None,
    )


def _about(workload, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The workload facts a summary reports. `before`: the facts of the pieces that came before
    this one (the streaming path); times are absolute, so the duration is the last piece's."""
    facts = {
        "name": workload.name,
        "requests": len(workload),
        "duration_s": workload.duration_s,
        "cached_prompt_tokens": int(np.sum(workload.cached_prompt_tokens)),
    }
    if before is not None:
        facts["requests"] += before["requests"]
        facts["cached_prompt_tokens"] += before["cached_prompt_tokens"]
    return facts


def _fleet_rng(seed_seq: np.random.SeedSequence, k: int, stream: int | None) -> np.random.Generator:
    """Fleet `k`'s random stream: child 1 + `stream` (default 1 + k) of the replication's."""
    return np.random.default_rng(_child(seed_seq, 1 + (k if stream is None else stream)))


@dataclass(frozen=True)
class _Job:
    """What every task of a batch reads once (through the backend's shared object): the
    scenarios, their replications' seed sequences and workloads."""

    scenarios: tuple
    seqs: tuple  # per scenario: its replications' seed sequences
    workloads: tuple  # per scenario: its replications' workloads (None on the streaming path)
    backend: Backend
    common_stream: bool
    requests: str = DEFAULT_REQUESTS  # request rows the streaming path keeps


def _fleet_task(job: _Job, item: tuple[int, int, int]):
    """Task (scenario s, replication r, fleet k) -> (FleetResult or StreamResult, workload
    facts, CPU seconds), or an InputError's fields (it does not pickle: its __init__ takes four
    arguments)."""
    s, r, k = item
    cpu0 = time.process_time()
    stream = 0 if job.common_stream else None
    try:
        if job.scenarios[s].engine_path == "streaming":
            result, about = stream_one_fleet(
                job.scenarios[s], k, job.seqs[s][r], job.backend, stream, job.requests, r
            )
        else:
            workload = job.workloads[s][r]
            result = simulate_one_fleet(
                job.scenarios[s], k, workload, job.seqs[s][r], job.backend, stream
            )
            about = None  # known in the caller, which drew the workload
    except InputError as exc:
        return ("input_error", exc.source, exc.field, exc.reason, exc.line)
    except ValueError as exc:
        # The engine refuses a fleet the workload cannot feed (no prefix identity for a prefix
        # cache, a streaming run of a rate-limited API, ...): the scenario's fault, one line.
        sc = job.scenarios[s]
        return ("input_error", str(sc.path), f"fleet.{sc.fleets[k].name}", str(exc), None)
    return result, about, time.process_time() - cpu0


def stream_one_fleet(
    scenario: Scenario,
    k: int,
    seed_seq: np.random.SeedSequence,
    backend: Backend | None = None,
    stream: int | None = None,
    requests: str = DEFAULT_REQUESTS,
    replication: int = 0,
):
    """Fleet `k` on the streaming path (`engine_path = "streaming"`): the replication's workload
    drawn piece by piece here (the same draws as `build_replication_workload`), aggregated per
    window as the run goes; the request rows asked for (`requests`) come back as Parquet bytes in
    the result's `rows`. Returns (StreamResult, workload facts)."""
    from sim.engine.rows import RequestRowWriter
    from sim.engine.streaming import simulate_fleet_streaming
    from sim.traffic.config import workload_chunks

    backend = backend or DEFAULT_BACKEND
    seen: dict[str, Any] | None = None  # the workload facts of the pieces so far
    limit = max_context(scenario.model)
    policy, source = scenario.model.context_overflow, str(scenario.path)

    def pieces():
        nonlocal seen
        for piece in workload_chunks(
            scenario.workload,
            base_dir=scenario.base_dir,
            rng=np.random.default_rng(_child(seed_seq, 0)),
            source=source,
        ):
            piece = fit_context(piece, limit, policy, source)
            seen = _about(piece, seen)
            yield piece

    cfg = scenario.fleets[k]
    with tempfile.TemporaryDirectory(prefix="infercost-rows-") as tmp:
        writer = RequestRowWriter(Path(tmp) / "rows.parquet", requests, seed=scenario.seed)
        result = simulate_fleet_streaming(
            cfg,
            pieces(),
            profile_factory=backend.profile_factory(scenario),
            rng=_fleet_rng(seed_seq, k, stream),
            window_s=scenario.window_s,
            horizon_s=scenario.horizon_s,
            slo_targets_s=dict(scenario.slo.targets_s),
            on_batch=lambda batch: writer.add(replication, cfg.name, batch),
        )
        path = writer.close({(replication, cfg.name): result.cost_rates()})
        result.rows = path.read_bytes() if path is not None else None
    return result, seen


def _choose_path(scenario: Scenario, seqs, backend: Backend):
    """`engine_path = "auto"`: the scenario on the streaming path when its first replication has
    more than AUTO_STREAMING_REQUESTS requests and every fleet can stream (its workload is then
    dropped: each task draws it again piece by piece, the same draws), else on the exact path
    with that workload kept. Returns (scenario, first replication's workload or None)."""
    from sim.engine.streaming import AUTO_STREAMING_REQUESTS, cannot_stream

    first = build_replication_workload(scenario, seqs[0], backend)
    if len(first) > AUTO_STREAMING_REQUESTS and not any(map(cannot_stream, scenario.fleets)):
        return dataclasses.replace(scenario, engine_path="streaming"), None
    return dataclasses.replace(scenario, engine_path="exact"), first


def _check_run(scenario: Scenario, n: int, seed: int) -> None:
    if n < 1:
        raise InputError(str(scenario.path), "scenario.replications", f"must be >= 1, got {n}")
    if seed < 0:  # the file's seed is checked on load, so a negative one came from --seed
        raise InputError("--seed", None, f"must be >= 0 (numpy SeedSequence), got {seed}")


def simulate_batch(
    scenarios: Sequence[Scenario],
    *,
    n: int | Sequence[int],
    seed: int | Sequence[int],
    executor: Executor | None = None,
    progress: Progress | None = None,
    backend: Backend | None = None,
    common_stream: bool = False,
    only_fleets: Sequence[int] | None = None,
    requests: str = DEFAULT_REQUESTS,
) -> tuple[list[list[ReplicationResult]], float]:
    """Replications of several scenarios (sweep points, price dates, advisor candidates) as one
    batch of (scenario, replication, fleet) tasks on `executor` (serial, a process pool or Ray);
    returns per scenario its `n` ReplicationResults, and the CPU seconds the tasks took. `n` and
    `seed` are one value for all scenarios or one per scenario.

    Workloads are drawn here, once per (scenario, replication), and shared with every task (a
    pool worker receives them once; Ray keeps them in its object store). Results do not depend on
    the executor: each fleet's stream comes from the seed, replication and fleet index only
    (`common_stream`: every fleet uses fleet 0's stream, as the advisor's candidates do).
    `only_fleets`: simulate just these fleet indices (each still on its own stream, so its results
    are those of the whole run); the ReplicationResults then hold those fleets, in that order.
    A scenario with `engine_path = "streaming"` is not drawn here: each of its tasks draws the
    workload piece by piece and returns aggregates (`StreamResult`) and the request rows asked
    for by `requests` ("all", "sample:N", "none")."""
    executor = executor or Executor("serial")
    backend = backend or DEFAULT_BACKEND
    ns = [n] * len(scenarios) if isinstance(n, int) else list(n)
    seeds = [seed] * len(scenarios) if isinstance(seed, int) else list(seed)
    for sc, k, sd in zip(scenarios, ns, seeds, strict=True):
        _check_run(sc, k, sd)
    seqs = tuple(
        tuple(np.random.SeedSequence(sd).spawn(k)) for sd, k in zip(seeds, ns, strict=True)
    )
    resolved = [
        _choose_path(sc, seqs[s], backend) if sc.engine_path == "auto" else (sc, None)
        for s, sc in enumerate(scenarios)
    ]
    scenarios = [sc for sc, _ in resolved]  # "auto" resolved to "exact" or "streaming"
    workloads = []
    for s, (sc, first) in enumerate(resolved):
        if sc.engine_path == "streaming":  # each task draws its workload piece by piece
            workloads.append(None)
            continue
        drawn = () if first is None else (first,)
        rest = seqs[s][len(drawn) :]
        workloads.append(drawn + tuple(build_replication_workload(sc, q, backend) for q in rest))
    job = _Job(tuple(scenarios), seqs, tuple(workloads), backend, common_stream, requests)

    def chosen(sc: Scenario) -> list[int]:
        return list(range(len(sc.fleets))) if only_fleets is None else list(only_fleets)

    items = [(s, r, k) for s, sc in enumerate(scenarios) for r in range(ns[s]) for k in chosen(sc)]
    tick = None if progress is None else (lambda _done, total: progress(1, total))
    outs = executor.map(_fleet_task, items, shared=job, progress=tick)
    for out in outs:
        if isinstance(out, tuple) and out and out[0] == "input_error":
            raise InputError(out[1], out[2], out[3], line=out[4])
    by = {item: out[0] for item, out in zip(items, outs, strict=True)}
    streamed = {item[:2]: out[1] for item, out in zip(items, outs, strict=True) if out[1]}

    def about(s: int, r: int) -> dict[str, Any]:
        return streamed[(s, r)] if workloads[s] is None else _about(workloads[s][r])

    results = [
        [
            ReplicationResult(r, [by[(s, r, k)] for k in chosen(sc)], about(s, r))
            for r in range(ns[s])
        ]
        for s, sc in enumerate(scenarios)
    ]
    return results, sum(out[2] for out in outs)


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
    from sim.engine.config import serving_groups
    from sim.gpu_match import check_gpu_matches_offer

    for i, fleet in enumerate(scenario.fleets):
        if fleet.kind != "cloud":
            continue
        for which, group in serving_groups(fleet):  # a disaggregated fleet: each pool
            prov = scenario.prices.get(fleet.name, {})
            check_gpu_matches_offer(
                group.gpu,
                (prov.get(which, {}) if which else prov).get("gpu_model"),
                source=str(scenario.path),
                field=f"fleet[{i}]{'.' + which if which else ''}.gpu",
                sku=group.instance,
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
    executor: Executor | None = None,
    requests: str = DEFAULT_REQUESTS,
) -> list[ReplicationResult]:
    """`n` replications from `SeedSequence(seed).spawn(n)`; identical whatever `workers` or the
    executor is. Each (replication, fleet) is one task: on `executor` when given, else serially
    (`workers` = 1) or in a local pool of `workers` processes."""
    _check_run(scenario, n, seed)
    if workers < 1:
        raise InputError("--workers", None, f"must be >= 1, got {workers}")
    scenario = ensure_prices(scenario, warehouse)
    if executor is None:
        executor = Executor("process", workers=workers)  # one worker runs inline
    (reps,), _cpu = simulate_batch(
        [scenario],
        n=n,
        seed=seed,
        executor=executor,
        progress=progress,
        backend=backend,
        requests=requests,
    )
    return reps
