"""`sim.backends.map_tasks`: every backend returns the same results in item order; Ray against a
local instance this module starts and stops (skipped when Ray is not installed)."""

from __future__ import annotations

import builtins
import importlib.util
import sys

import numpy as np
import pytest

from sim.backends import BackendError, map_tasks
from sim.engine import simulate_fleet
from sim.engine.config import ApiFleetConfig, EngineConfig, SelfHostedFleetConfig
from sim.workload import Workload

EXP = SelfHostedFleetConfig(
    name="own",
    servers=1,
    gpus_per_server=4,
    tp=1,
    gpu_price_usd=20_000.0,
    engine=EngineConfig(service="exponential", service_mean_s=0.9),
)
API = ApiFleetConfig(
    name="api", price_usd_per_mtok_input=0.5, price_usd_per_mtok_output=1.0, rpm_limit=300
)


def _workload(n: int = 3000) -> Workload:
    rng = np.random.default_rng(11)
    return Workload(
        np.cumsum(rng.exponential(1 / 3.5, n)),
        rng.integers(10, 2000, n),
        rng.integers(1, 400, n),
        name="poisson",
    )


def replicate(workload: Workload, task: tuple[str, int]) -> dict:
    """One task: a fleet on the shared workload with a seed, reduced to comparable figures."""
    name, seed = task
    cfg = EXP if name == "own" else API
    r = simulate_fleet(cfg, workload, profile_factory=None, rng=np.random.default_rng(seed))
    return {
        "finish": r.finish_s.tobytes(),
        "status": r.status.tobytes(),
        "cost": r.total_cost_usd,
    }


def square(x: int) -> int:
    return x * x


TASKS = [("own", 1), ("api", 1), ("own", 2), ("api", 2)]


def test_serial_and_process_pool_agree_in_item_order():
    w = _workload()
    serial = map_tasks(replicate, TASKS, shared=w, backend="serial")
    seen = []
    pooled = map_tasks(
        replicate,
        TASKS,
        shared=w,
        backend="process",
        workers=2,
        progress=lambda d, n: seen.append((d, n)),
    )
    assert pooled == serial
    assert serial[0] != serial[2]  # seeds matter: the comparison is not vacuous
    assert seen[-1] == (4, 4) and len(seen) == 4


def test_without_shared_and_bad_arguments():
    assert map_tasks(square, [3, 1, 2], backend="process", workers=2) == [9, 1, 4]
    assert map_tasks(square, [], backend="process") == []
    with pytest.raises(BackendError, match="backend"):
        map_tasks(square, [1], backend="dask")
    with pytest.raises(BackendError, match="address"):
        map_tasks(square, [1], backend="process", address="auto")
    with pytest.raises(BackendError, match="workers"):
        map_tasks(square, [1], backend="process", workers=0)


def test_a_failing_task_raises_in_the_caller():
    with pytest.raises(TypeError):
        map_tasks(square, [1, "x"], backend="process", workers=2)


def test_ray_missing_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BackendError, match=r"pip install 'infercost\[ray\]'"):
        map_tasks(square, [1], backend="ray")


ray_installed = importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    cloudpickle = pytest.importorskip("ray.cloudpickle")

    # Ray workers do not see pytest's sys.path: ship this module's functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.skipif(not ray_installed, reason="ray not installed (pip install 'infercost[ray]')")
def test_ray_matches_the_process_pool(local_ray):
    w = _workload()
    seen = []
    on_ray = map_tasks(
        replicate, TASKS, shared=w, backend="ray", progress=lambda d, n: seen.append(d)
    )
    assert on_ray == map_tasks(replicate, TASKS, shared=w, backend="serial")
    assert seen == [1, 2, 3, 4]
    assert local_ray.is_initialized()  # a connection the caller made is left open
    with pytest.raises(TypeError):
        map_tasks(square, [1, "x"], backend="ray")
