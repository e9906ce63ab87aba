"""A production week through the streaming engine: scenarios/week_at_scale.toml, one replication,
the three fleets as parallel tasks, each reading the workload tile by tile (an hour at a time) and
keeping only aggregates plus a 100,000-request sample.

Run: /usr/bin/time -v .venv/bin/python bench/bench_week.py [--days 7] [--workers 2]
     (--days 3.5 gives the 8.4M-request half week, to check that memory stays flat)

The workload is the scenario's (the Azure 2023 code trace scaled to the peak rate, tiled and
thinned by the daily sinusoid, as `transforms.tile_diurnal` does), generated tile by tile from the
scenario seed in each task: the fleets see the same requests. Prices are pinned (the litellm
together_ai 8B price and Lambda's 8x H100 on-demand price in the shipped snapshot) so that no
warehouse is needed; they do not change the speed.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.backends import map_tasks  # noqa: E402
from sim.engine.rows import RequestRowWriter  # noqa: E402
from sim.engine.streaming import simulate_fleet_streaming  # noqa: E402
from sim.traffic.loaders import load_trace, resolve_trace_path  # noqa: E402
from sim.traffic.synthetic import diurnal_envelope  # noqa: E402
from sim.traffic.transforms import scale_rate  # noqa: E402
from sim.workload import Workload  # noqa: E402

SCENARIO = REPO / "scenarios" / "week_at_scale.toml"
PRICES = [
    "fleet.api-together.price_usd_per_mtok_input=0.18",
    "fleet.api-together.price_usd_per_mtok_output=0.18",
    "fleet.cloud-h100.price_usd_per_hour=23.92",
    "fleet.cloud-h100.gpus_per_instance=8",
]


def load(days: float):
    from sim.scenario import load_scenario

    return load_scenario(SCENARIO, [*PRICES, f"workload.tile_to_s={days * 86400:g}"])


def week_chunks(workload_cfg: dict, seed: int):
    """The scenario's tiled diurnal workload, one tile (about an hour) per chunk."""
    rng = np.random.default_rng(seed)
    trace = load_trace(resolve_trace_path(workload_cfg["trace"]))
    tile = scale_rate(trace, float(workload_cfg["rate_scale"]), rng)
    duration = float(workload_cfg["tile_to_s"])
    period = tile.duration_s * (1 + 1 / max(len(tile) - 1, 1))
    for k in range(math.ceil(duration / period)):
        t = tile.arrival_s + period * k
        inside = t < duration
        t = t[inside]
        keep = rng.random(len(t)) < diurnal_envelope(
            t, float(workload_cfg["peak_to_trough"]), 86400.0, float(workload_cfg["peak_hour"])
        )
        idx = np.flatnonzero(inside)[keep]
        yield Workload(
            t[keep],
            tile.prompt_tokens[idx],
            tile.output_tokens[idx],
            tile.cached_prompt_tokens[idx],
        )


def run_fleet(task: tuple[float, int, str]) -> dict:
    """One fleet of the week (a task: runs in its own process)."""
    from sim.run import DEFAULT_BACKEND

    days, k, out_dir = task
    sc = load(days)
    cfg = sc.fleets[k]
    factory = DEFAULT_BACKEND.profile_factory(sc)
    writer = RequestRowWriter(Path(out_dir) / f"requests-{cfg.name}.parquet", seed=sc.seed)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = simulate_fleet_streaming(
        cfg,
        week_chunks(sc.workload, sc.seed),
        profile_factory=factory,
        rng=np.random.default_rng([sc.seed, 1 + k]),
        window_s=sc.window_s,
        slo_targets_s=dict(sc.slo.targets_s),
        on_batch=lambda b: writer.add(0, cfg.name, b),
    )
    writer.close({(0, cfg.name): res.cost_rates()})
    ts = res.timeseries
    fig = res.figures()
    return {
        "fleet": cfg.name,
        "requests": fig["arrivals"],
        "ok": fig["ok"],
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "aggregate_mb": res.aggregate.nbytes / 1e6,
        "request_slots": res.meta.get("request_slots"),
        "windows": ts.height,
        "total_cost_usd": res.total_cost_usd,
        "ttft_p99_s": fig["ttft_p99_s"],
        "e2e_p99_s": fig["e2e_p99_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sc = load(args.days)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        tasks = [(args.days, k, out) for k in range(len(sc.fleets))]
        # The two GPU fleets first: they take longest.
        order = sorted(range(len(tasks)), key=lambda k: sc.fleets[k].kind == "api")
        rows = map_tasks(run_fleet, [tasks[k] for k in order], workers=args.workers)
        sample_mb = sum(p.stat().st_size for p in Path(out).iterdir()) / 1e6
    wall = time.perf_counter() - t0
    for row in rows:
        print(json.dumps(row))
    n = rows[0]["requests"]
    print(
        f"week_at_scale, {args.days:g} days: {n:,} requests x {len(rows)} fleets in {wall:.1f} s "
        f"wall ({args.workers} workers); per-task peak RSS "
        + ", ".join(f"{r['fleet']} {r['peak_rss_mb']:.0f} MB" for r in rows)
        + f"; request samples {sample_mb:.1f} MB"
    )


if __name__ == "__main__":
    main()
