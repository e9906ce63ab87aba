"""Speed-up of independent simulation tasks (replications, sweep points) run as Ray tasks, against
the same tasks run one after another in this process.

Run: .venv/bin/python bench/bench_ray.py [--tasks 8] [--cpus 1 2] [--address auto]

Each task simulates the Azure conv trace (19,366 requests) on a self-hosted fleet with its own
seed; the workload is put into Ray's object store once. Without --address the script starts a
local Ray instance per CPU count (`ray.init(num_cpus=N)`); with --address it joins a running
cluster (e.g. `ray start --head` plus `ray start --address=HEAD:6379` on each added node) and
reports the cluster's CPUs. Prices are placeholders: the speed does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import conv_trace  # noqa: E402

from sim.backends import map_tasks, ray_module  # noqa: E402
from sim.engine import simulate_fleet  # noqa: E402
from sim.engine.config import EngineConfig, SelfHostedFleetConfig  # noqa: E402

FLEET = SelfHostedFleetConfig(
    name="own", servers=1, tp=4, gpu_price_usd=25_000.0, engine=EngineConfig()
)


def replication(workload, seed: int) -> float:
    from sim.perf import build_profile

    def factory(gpu, tp, precision, mem_util):
        return build_profile("llama-3.1-70b", gpu, tp=tp, precision=precision or "bf16")

    r = simulate_fleet(FLEET, workload, profile_factory=factory, rng=np.random.default_rng(seed))
    return r.total_cost_usd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--address", default=None)
    args = ap.parse_args()
    w = conv_trace()
    seeds = list(range(args.tasks))
    t = time.perf_counter()
    serial = map_tasks(replication, seeds, shared=w, backend="serial")
    base = time.perf_counter() - t
    print(f"{args.tasks} tasks one after another: {base:.1f} s")
    ray = ray_module()
    for cpus in [None] if args.address else args.cpus:
        if args.address:
            ray.init(address=args.address)
            cpus = int(ray.cluster_resources().get("CPU", 0))
        else:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        map_tasks(replication, seeds[:cpus], shared=w, backend="ray")  # warm the workers
        t = time.perf_counter()
        got = map_tasks(replication, seeds, shared=w, backend="ray")
        wall = time.perf_counter() - t
        ray.shutdown()
        assert got == serial, "Ray results differ from the serial ones"
        print(f"Ray, {cpus} CPU(s): {wall:.1f} s, speed-up {base / wall:.2f}x (results identical)")


if __name__ == "__main__":
    main()
