"""Where independent tasks run (replications, sweep points, the fleets of one replication): in
this process, in a local process pool, or as Ray tasks on a cluster.

    results = map_tasks(fn, items, shared=workload, backend="ray", address="auto")

`fn(shared, item)` (or `fn(item)` when `shared` is None) must be a module-level function, so it
pickles by reference, and deterministic in its arguments: every backend then returns the same
results, in the order of `items`. `shared` is sent once: to each pool worker when it starts, or
into Ray's object store with one `ray.put` that every task reads (zero-copy for numpy arrays on
the same node), never once per task.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

BACKENDS = ("serial", "process", "ray")

RAY_MISSING = (
    "the ray backend needs Ray, an optional dependency: pip install 'infercost[ray]' "
    "(or pip install 'ray>=2.9')"
)

Progress = Callable[[int, int], None]  # (tasks done, tasks in all)


class BackendError(ValueError):
    """A backend that cannot run here (unknown name, Ray not installed, bad address)."""


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def map_tasks(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    shared: Any = None,
    backend: str = "process",
    address: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[Any]:
    """Run `fn(shared, item)` (or `fn(item)` without `shared`) for every item; results in item
    order. An exception in a task is raised here, after the other tasks are cancelled.

    backend: "serial" (this process), "process" (a local pool of `workers` processes; one item
    or one worker runs inline), "ray" (one Ray task per item, `num_cpus=1` each).
    address: Ray only: None starts a local Ray instance for this process, kept until it exits
    (unless this process is already connected, e.g. by `ray.init` in a test), "auto" joins the cluster this machine
    belongs to (`ray start --head` / a KubeRay pod), "ray://HOST:10001" connects a Ray client.
    workers: process pool size (default: the CPUs this process may use); ignored by Ray, which
    schedules on every CPU of the cluster.
    progress: called as `progress(done, total)` after each finished task (in the driver).
    """
    items = list(items)
    _check(backend, address, workers)
    if backend == "ray":
        return _map_ray(fn, items, shared, address, progress)
    workers = default_workers() if workers is None else workers
    if backend == "serial" or workers == 1 or len(items) <= 1:
        return _map_serial(fn, items, shared, progress)
    return _map_process(fn, items, shared, min(workers, len(items)), progress)


def _check(backend: str, address: str | None, workers: int | None) -> None:
    if backend not in BACKENDS:
        raise BackendError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise BackendError("address: only meaningful with backend = 'ray'")
    if workers is not None and workers < 1:
        raise BackendError(f"workers: must be at least 1, got {workers}")


@dataclass(frozen=True)
class Executor:
    """Where a command's tasks run: `--backend`, `--address` and `--workers` in one value.

    Executor("ray", address="auto").map(fn, items, shared=workloads)
    """

    backend: str = "process"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self):
        _check(self.backend, self.address, self.workers)
        if self.backend == "ray":
            ray_module()  # fail now, with how to install it, rather than after the workload is built

    def map(self, fn, items, *, shared: Any = None, progress: Progress | None = None) -> list:
        return map_tasks(
            fn,
            items,
            shared=shared,
            backend=self.backend,
            address=self.address,
            workers=self.workers,
            progress=progress,
        )


def _call(fn, shared, item):
    return fn(item) if shared is None else fn(shared, item)


def _map_serial(fn, items: Sequence, shared, progress: Progress | None) -> list:
    out = []
    for item in items:
        out.append(_call(fn, shared, item))
        if progress is not None:
            progress(len(out), len(items))
    return out


# -- local process pool ---------------------------------------------------------------------------
_SHARED: Any = None


def _init_worker(shared) -> None:
    global _SHARED
    _SHARED = shared


def _pool_task(fn, item, has_shared: bool):
    return fn(_SHARED, item) if has_shared else fn(item)


def _pool_context():
    # Not fork: forking a process whose polars/numpy thread pools are running can deadlock. A fork
    # server that has imported the simulator once starts workers faster than spawn.
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["sim.run", "sim.engine", "sim.perf", "sim.traffic"])
    return ctx


class ProcessPool:
    """A local process pool that keeps its workers (and `shared`, sent to each once) across
    several `map` calls: a sweep's points or a benchmark's repeats pay the start-up once.

        with ProcessPool(workers=2, shared=workload) as pool:
            a = pool.map(fn, items)
            b = pool.map(fn, more_items)
    """

    def __init__(self, *, workers: int | None = None, shared: Any = None):
        self.workers = default_workers() if workers is None else workers
        if self.workers < 1:
            raise BackendError(f"workers: must be at least 1, got {self.workers}")
        self.has_shared = shared is not None
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_pool_context(),
            initializer=_init_worker,
            initargs=(shared,),
        )

    def map(self, fn, items: Sequence, progress: Progress | None = None) -> list:
        items = list(items)
        out: list = [None] * len(items)
        pending = {
            self._pool.submit(_pool_task, fn, item, self.has_shared): k
            for k, item in enumerate(items)
        }
        done_count = 0
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    out[pending.pop(fut)] = fut.result()
                    done_count += 1
                    if progress is not None:
                        progress(done_count, len(items))
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        return out

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _map_process(fn, items: Sequence, shared, workers: int, progress: Progress | None) -> list:
    with ProcessPool(workers=workers, shared=shared) as pool:
        return pool.map(fn, items, progress)


# -- Ray ------------------------------------------------------------------------------------------
def ray_module():
    """`import ray`, or a BackendError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BackendError(RAY_MISSING) from exc
    return ray


def _ray_task(fn, shared, item):
    # Ray resolves an ObjectRef passed as a top-level argument before the call: `shared` arrives
    # as the object itself, read from the node's object store.
    return fn(item) if shared is None else fn(shared, item)


def connect_ray(address: str | None):
    """The Ray module, connected: to `address`, or to a local Ray started for this process
    (shut down when the process exits, so the several batches of one command, e.g. a run and
    its robustness edges, share one start-up). A connection made by the caller is used as is."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise BackendError(f"address: cannot connect to Ray at {address!r}: {exc}") from exc
        atexit.register(ray.shutdown)
    return ray


def _map_ray(fn, items: Sequence, shared, address: str | None, progress) -> list:
    ray = connect_ray(address)
    # SPREAD: without it Ray keeps tasks near their arguments (the shared workload, on the
    # driver's node) and an added node stayed idle (bench/bench_ray_nodes.py: no speed-up
    # from 1 to 2 nodes; 1.35x with SPREAD on the 2-core machine).
    remote = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_ray_task)
    shared_ref = ray.put(shared) if shared is not None else None
    fn_ref = ray.put(fn)
    refs = [remote.remote(fn_ref, shared_ref, item) for item in items]
    position = {ref: k for k, ref in enumerate(refs)}
    out: list = [None] * len(items)
    pending = list(refs)
    done_count = 0
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                out[position[ref]] = ray.get(ref)
                done_count += 1
                if progress is not None:
                    progress(done_count, len(items))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return out
