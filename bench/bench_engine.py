"""Engine speed and memory: requests simulated per second of wall time, against a plain SimPy
M/M/c queue with one process per request measured in the same run.

Run: .venv/bin/python bench/bench_engine.py [--million-n N]
Prices below are placeholders for timing only (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# One OpenBLAS thread per process, as `sim` sets for itself and its workers: before NumPy loads.
import sim.cli._threads  # noqa: E402, F401, I001

import numpy as np  # noqa: E402
import simpy  # noqa: E402

from sim.backends import ProcessPool  # noqa: E402
from sim.engine import simulate_fleet  # noqa: E402
from sim.engine.config import (  # noqa: E402
    ApiFleetConfig,
    CloudFleetConfig,
    EngineConfig,
    SelfHostedFleetConfig,
)
from sim.perf import build_profile  # noqa: E402
from sim.workload import Workload  # noqa: E402


def mmc_baseline(n: int, c: int = 4, rho: float = 0.8, seed: int = 0) -> float:
    """Plain SimPy M/M/c: a Resource of capacity c and one process per request. Requests/s."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    services = rng.exponential(1.0, n).tolist()

    def customer(service_s):
        with servers.request() as req:
            yield req
            yield env.timeout(service_s)

    def source():
        for gap, service_s in zip(
            rng.exponential(1 / (rho * c), n).tolist(), services, strict=True
        ):
            yield env.timeout(gap)
            env.process(customer(service_s))

    env.process(source())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def conv_trace() -> Workload:
    try:
        from sim.traffic.loaders import load_trace, resolve_trace_path

        return load_trace(resolve_trace_path("builtin:azure2023_conv"))
    except Exception:  # the loader is another engineer's; fall back to reading the CSV directly
        import polars as pl

        path = Path(__file__).resolve().parents[1] / "sim/data/traces/azure2023_conv.csv"
        df = pl.read_csv(path, try_parse_dates=True)
        t = df["TIMESTAMP"].cast(pl.Int64).to_numpy() / 1e6
        return Workload(t - t[0], df["ContextTokens"].to_numpy(), df["GeneratedTokens"].to_numpy())


def synthetic(n: int, rate_per_s: float, seed: int = 0) -> Workload:
    """Poisson arrivals, lognormal lengths shaped like the conv trace (medians 1000 / 200)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate_per_s, n))
    prompt = np.clip(rng.lognormal(np.log(1000), 0.8, n), 1, 16_000).astype(np.int64)
    output = np.clip(rng.lognormal(np.log(200), 0.8, n), 1, 2000).astype(np.int64)
    return Workload(arrivals, prompt, output, name=f"poisson({rate_per_s}/s)")


def fleets(model_tp: int, servers: int, max_cloud: int):
    engine = EngineConfig(max_batch_seqs=256, max_batched_tokens=8192, router="least_outstanding")
    return [
        ApiFleetConfig(
            name="api",
            price_usd_per_mtok_input=0.6,
            price_usd_per_mtok_output=0.8,
            rpm_limit=10_000,
            tpm_limit=10_000_000,
        ),
        CloudFleetConfig(
            name="cloud",
            tp=model_tp,
            gpus_per_instance=8,
            price_usd_per_hour=98.0,
            initial_replicas=1,
            max_replicas=max_cloud,
            target=64,
            engine=engine,
        ),
        SelfHostedFleetConfig(
            name="self_hosted",
            servers=servers,
            tp=model_tp,
            gpu_price_usd=25_000.0,
            engine=engine,
        ),
    ]


def run_fleets(w: Workload, model: str, tp: int, servers: int, max_cloud: int) -> dict:
    """Wall time of each fleet, one after the other (main() takes the best over its rounds)."""

    def factory(gpu, tp_, precision, mem_util):
        return build_profile(model, gpu, tp=tp_, precision=precision or "bf16", mem_util=mem_util)

    out = {}
    total = 0.0
    for cfg in fleets(tp, servers, max_cloud):
        t = time.perf_counter()
        r = simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(1))
        dt = time.perf_counter() - t
        total += dt
        ok = float((r.status == 0).mean())
        out[cfg.name] = {"wall_s": dt, "req_per_s": len(w) / dt, "ok_frac": ok}
        del r
    out["all_three"] = {
        "wall_s": total,
        "req_per_s": len(w) / total,
        "fleet_req_per_s": 3 * len(w) / total,
    }
    return out


def fleet_task(w: Workload, item: tuple) -> float:
    """One fleet of the replay in a pool worker; returns its ok fraction."""
    cfg, model = item

    def factory(gpu, tp_, precision, mem_util):
        return build_profile(model, gpu, tp=tp_, precision=precision or "bf16", mem_util=mem_util)

    r = simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(1))
    return float((r.status == 0).mean())


def fleet_items(model: str, tp: int, servers: int, max_cloud: int) -> list:
    items = [(cfg, model) for cfg in fleets(tp, servers, max_cloud)]
    items.sort(key=lambda item: item[0].kind == "api")  # the long GPU fleets first
    return items


def time_parallel(pool: ProcessPool, items: list) -> float:
    """Wall time of the three fleets of one replication as tasks on a warm local pool (the
    workload sent to each worker once)."""
    t = time.perf_counter()
    pool.map(fleet_task, items)
    return time.perf_counter() - t


def million(n: int) -> None:
    """Child process: the 1M-request run, so ru_maxrss is this run's own peak."""
    w = synthetic(n, rate_per_s=40.0)
    res = run_fleets(w, "llama-3.1-8b", tp=1, servers=2, max_cloud=24)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--million-n", type=int, default=1_000_000)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        million(args.million_n)
        return

    # Both sides of the ratio measured in the same rounds, best of 5: each round times the M/M/c
    # baseline, each fleet one after the other, and the three fleets as parallel tasks. The host's
    # speed drifts in phases of seconds (up to 30% here), so the repeats of one figure are spread
    # over the whole run instead of back to back: a slow phase cannot hit all of them.
    from sim.engine import native

    print(f"replica build: {native.describe()}")
    w = conv_trace()
    items = fleet_items("llama-3.1-70b", tp=4, servers=1, max_cloud=8)
    baseline, par, conv = 0.0, float("inf"), {}
    with ProcessPool(workers=2, shared=w) as pool:
        pool.map(fleet_task, items)  # warm-up: imports, perf profiles
        for r in range(5):
            baseline = max(baseline, mmc_baseline(200_000, seed=r))
            one = run_fleets(w, "llama-3.1-70b", tp=4, servers=1, max_cloud=8)
            for name, row in one.items():
                if name not in conv or row["wall_s"] < conv[name]["wall_s"]:
                    conv[name] = row
            par = min(par, time_parallel(pool, items))
    print(f"plain SimPy M/M/c (c=4, rho=0.8, 200k requests, best of 5): {baseline:,.0f} req/s")
    print(
        f"Azure conv trace ({len(w):,} requests, {w.duration_s / 3600:.2f} h), Llama-3.1-70B TP4, best of 5:"
    )
    for name, row in conv.items():
        if name == "all_three":
            continue
        print(f"  {name:12s} {row['wall_s']:7.3f} s  {row['req_per_s']:10,.0f} req/s", end="")
        print(f"  (ratio to M/M/c {row['req_per_s'] / baseline:.2f})", end="")
        print(f"  ok={row['ok_frac']:.3f}" if "ok_frac" in row else "")
    total = sum(conv[name]["wall_s"] for name in ("api", "cloud", "self_hosted"))
    print(
        f"  three-fleet replay, one after the other: {len(w) / total:,.0f} requests/s "
        f"(ratio to M/M/c {len(w) / total / baseline:.2f}); "
        f"{3 * len(w) / total:,.0f} request-fleet simulations/s (ratio {3 * len(w) / total / baseline:.2f})"
    )
    print(
        f"  three-fleet replay, fleets as parallel tasks on 2 worker processes (warm pool, "
        f"best of 5): {par:.3f} s, {len(w) / par:,.0f} requests/s "
        f"(ratio to M/M/c {len(w) / par / baseline:.2f})"
    )
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--million-n", str(args.million_n)],
        capture_output=True,
        text=True,
        check=True,
    )
    big = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"synthetic {args.million_n:,} requests (Poisson 40/s), Llama-3.1-8B TP1:")
    for name, row in big.items():
        if name == "peak_rss_mb":
            continue
        print(f"  {name:12s} {row['wall_s']:7.2f} s  {row['req_per_s']:10,.0f} req/s", end="")
        print(f"  ok={row['ok_frac']:.3f}" if "ok_frac" in row else "")
    print(f"  peak memory (RSS, whole process): {big['peak_rss_mb']:,.0f} MB (target < 1024 MB)")


if __name__ == "__main__":
    main()
