"""Speed-up of a sweep per added Ray node, on a local multi-node Ray cluster
(`ray.cluster_utils.Cluster`: separate raylets on this machine, as Ray's own tests use).

Run: python bench/bench_ray_nodes.py [--nodes 1 2] [--cpus-per-node 1] [--points 4]

The sweep is `sim sweep scenarios/peak.toml --grid workload.rate_scale=...` with one replication
(points x 3 fleets tasks), through the same code (`sim.analysis.runner.Simulate.many` on a Ray
executor); prices are pinned so no warehouse is needed (they do not change the speed). Each
cluster size is timed after a warm-up batch, and its summaries are checked equal to the first
cluster's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.analysis.runner import Simulate  # noqa: E402
from sim.backends import Executor, ray_module  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

PINNED = [
    "fleet.api-together.price_usd_per_mtok_input=0.88",
    "fleet.api-together.price_usd_per_mtok_output=0.88",
    "fleet.cloud-8xh100.price_usd_per_hour=23.92",
    "fleet.cloud-8xh100.gpus_per_instance=8",
    "fleet.own-2x8xh100.gpu_price_usd=25000",
]


def variants(points: int):
    base = load_scenario(REPO / "scenarios" / "peak.toml", PINNED)
    scales = [0.5 * 2 ** (k / 2) for k in range(points)]
    return [base.varied([f"workload.rate_scale={2 * s!r}"]) for s in scales]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cpus-per-node", type=int, default=1)
    ap.add_argument("--points", type=int, default=4)
    args = ap.parse_args()
    ray = ray_module()
    from ray.cluster_utils import Cluster

    sweep = variants(args.points)
    reference = None
    for nodes in args.nodes:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=args.cpus_per_node)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        sim = Simulate(executor=Executor("ray", address=cluster.address))
        # Warm-up: the whole sweep once, so every node's workers have imported the simulator.
        sim.many(sweep, seed=1, replications=1, workers=None)
        t = time.perf_counter()
        out = sim.many(sweep, seed=1, replications=1, workers=None)
        wall = time.perf_counter() - t
        got = [s.to_json() for s in out]
        same = reference is None or got == reference
        reference = reference or got
        print(
            json.dumps(
                {
                    "nodes": nodes,
                    "cpus": int(ray.cluster_resources().get("CPU", 0)),
                    "tasks": sum(len(v.fleets) for v in sweep),
                    "wall_s": round(wall, 2),
                    "identical_to_first": same,
                    "load": os.getloadavg(),
                }
            ),
            flush=True,
        )
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
