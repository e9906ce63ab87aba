"""Wall time of `sim run` on the shipped scenarios: the default peak.toml run, a 20-replication
peak.toml run (issue 6 asks for it), serial against parallel, and every shipped scenario once.

Run: .venv/bin/python bench/scenario_run.py [--quick]
API prices are pinned (litellm 1.110.2 together_ai prices) in case the warehouse snapshot lacks
them; cloud prices come from the warehouse. Nothing is recorded in the warehouse.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.run import run_replications, run_scenario  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

API_PRICES = {
    "llama-3.1-70b": ("0.88", "0.88"),  # together_ai Meta-Llama-3.1-70B-Instruct-Turbo
    "llama-3.1-8b": ("0.18", "0.18"),  # together_ai Meta-Llama-3.1-8B-Instruct-Turbo
}


def scenario(name: str, extra: list[str] = ()):
    path = REPO / "scenarios" / f"{name}.toml"
    sc = load_scenario(path)
    inp, out = API_PRICES[sc.model.name]
    pins = [
        f"fleet.api-together.price_usd_per_mtok_input={inp}",
        f"fleet.api-together.price_usd_per_mtok_output={out}",
    ]
    return load_scenario(path, [*pins, *extra])


def timed(label: str, fn) -> float:
    t0 = time.perf_counter()
    result = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<58} {dt:8.1f} s")
    return dt, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the 20-replication run")
    args = parser.parse_args()
    os.environ.setdefault("INFERCOST_DB", str(Path(tempfile.mkdtemp()) / "bench.duckdb"))
    print(f"cores: {os.cpu_count()}")
    peak = scenario("peak")
    n_requests = None
    with tempfile.TemporaryDirectory() as tmp:
        _, out = timed(
            f"peak.toml default ({peak.replications} replications, 2 workers, all outputs)",
            lambda: run_scenario(peak, out_dir=Path(tmp) / "peak", record=False),
        )
        n_requests = out.summary["fleets"][0]["requests"]["arrivals"]
    print(f"  requests per replication: {n_requests:.0f} x {len(peak.fleets)} fleets")
    t1, _ = timed(
        "peak.toml 2 replications, serial", lambda: run_replications(peak, n=2, seed=1, workers=1)
    )
    t2, _ = timed(
        "peak.toml 2 replications, 2 workers",
        lambda: run_replications(peak, n=2, seed=1, workers=2),
    )
    print(f"  parallel speed-up on 2 replications: {t1 / t2:.2f}x")
    if not args.quick:
        timed(
            "peak.toml 20 replications, 2 workers",
            lambda: run_replications(peak, n=20, seed=1, workers=2),
        )
    for name in ("baseline", "bursty_code", "offline_low_traffic", "diurnal_day"):
        sc = scenario(name)
        timed(
            f"{name}.toml default ({sc.replications} replications, 2 workers)",
            lambda sc=sc: run_replications(sc, n=sc.replications, seed=sc.seed, workers=2),
        )
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(f"peak resident memory of one process: {peak_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
