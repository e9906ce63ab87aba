"""Fingerprints of `simulate_fleet` results over a set of fleet set-ups, to check that an engine
change that should be exact is exact.

Run: .venv/bin/python bench/engine_fingerprint.py save FILE   (before the change)
     .venv/bin/python bench/engine_fingerprint.py check FILE  (after: lists the set-ups that moved)

Two verdicts per set-up: every request's times, status and attempts bit for bit ("requests"), and
the whole result bit for bit ("all": also the time series, costs and meta). Where only "all" moves,
`check` compares every number of the time series, cost breakdown and meta with a relative
tolerance of 1e-12 and prints the largest difference: sums of GPU busy time over the replicas are
added in event order, which a change of when an effect is recorded may permute (last bits).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "engine"))

from engine_helpers import FakeProfile, factory_for, poisson_workload  # noqa: E402

from sim.engine import simulate_fleet  # noqa: E402
from sim.engine.config import (  # noqa: E402
    ApiFleetConfig,
    CloudFleetConfig,
    EngineConfig,
    SelfHostedFleetConfig,
)

API = ApiFleetConfig(
    name="api", price_usd_per_mtok_input=0.6, price_usd_per_mtok_output=0.8, rpm_limit=600
)


def setups():
    fast = factory_for(FakeProfile())
    starved = factory_for(FakeProfile(kv_capacity_tokens=6000))
    affine = factory_for(FakeProfile(roofline=False))
    eng = EngineConfig(max_batch_seqs=64, max_batched_tokens=2048)
    cloud = CloudFleetConfig(
        name="cloud",
        price_usd_per_hour=10.0,
        gpus_per_instance=8,
        initial_replicas=1,
        max_replicas=6,
        target=16,
        upscale_delay_s=20,
        downscale_delay_s=60,
        engine=eng,
    )
    own = SelfHostedFleetConfig(name="own", servers=1, tp=2, gpu_price_usd=20000.0, engine=eng)
    yield "api", API, None
    yield "api_batch", replace(API, batch=True, rpm_limit=None), None
    yield "cloud", cloud, fast
    yield (
        "cloud_spot",
        replace(
            cloud,
            term="spot",
            spot_preemptions_per_hour=4.0,
            fallback_on_demand=True,
            fallback_price_usd_per_hour=20.0,
        ),
        fast,
    )
    yield "cloud_queue_rate", replace(cloud, policy="queue", target=4), fast
    yield "cloud_rate", replace(cloud, policy="rate", target=3, min_replicas=0), fast
    yield "own", own, fast
    yield "own_affine", own, affine
    yield "own_starved", own, starved
    yield "own_nochunk", replace(own, engine=replace(eng, chunked_prefill=False)), fast
    yield "own_starved_nochunk", replace(own, engine=replace(eng, chunked_prefill=False)), starved
    for router in ("round_robin", "jsq"):
        yield f"own_{router}", replace(own, engine=replace(eng, router=router)), fast
    yield "own_maxq", replace(own, engine=replace(eng, max_queue=5)), fast
    yield "hybrid", replace(own, tp=8, overflow=API, overflow_queue_threshold=8), fast
    yield (
        "exp",
        replace(own, tp=1, engine=replace(eng, service="exponential", service_mean_s=0.8)),
        None,
    )


def _numbers(r) -> list[float]:
    """Every number of a result besides the per-request arrays, in a fixed order."""
    out = [
        float(x)
        for col in r.timeseries.columns
        for x in r.timeseries[col].to_list()
        if isinstance(x, int | float)
    ]
    out += [float(np.sum(v)) for _, v in sorted(r.cost_breakdown_usd.items())]
    out += [float(x) for x in np.asarray(r.cost_usd, dtype=np.float64)]

    def walk(v):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return
        if isinstance(v, int | float):
            out.append(float(v))
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                walk(v[k])
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(r.meta)
    return out


def fingerprints() -> dict[str, dict]:
    out = {}
    for name, cfg, factory in setups():
        w = poisson_workload(np.random.default_rng(3), 4000, 6.0)
        for horizon in (None, 400.0):
            r = simulate_fleet(
                cfg, w, profile_factory=factory, rng=np.random.default_rng(5), horizon_s=horizon
            )
            req = hashlib.sha256()
            for arr in (r.start_s, r.first_token_s, r.finish_s, r.status, r.attempts):
                req.update(np.ascontiguousarray(arr).tobytes())
            h = req.copy()
            h.update(np.ascontiguousarray(r.cost_usd).tobytes())
            h.update(r.timeseries.write_csv().encode())
            h.update(repr(sorted(r.cost_breakdown_usd.items())).encode())
            meta = {k: v for k, v in r.meta.items()}
            h.update(json.dumps(meta, sort_keys=True, default=str).encode())
            out[f"{name}/{horizon}"] = {
                "requests": req.hexdigest()[:16],
                "all": h.hexdigest()[:16],
                "numbers": _numbers(r),
            }
    return out


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    got = fingerprints()
    if mode == "save":
        path.write_text(json.dumps(got))
        print(f"saved {len(got)} fingerprints")
        return
    want = json.loads(path.read_text())
    moved = [k for k in want if want[k]["requests"] != got[k]["requests"]]
    print(f"requests: {len(want) - len(moved)}/{len(want)} identical; moved: {moved}")
    bad = []
    for k in want:
        if want[k]["all"] == got[k]["all"]:
            continue
        a, b = np.asarray(want[k]["numbers"]), np.asarray(got[k]["numbers"])
        if a.shape != b.shape:
            bad.append(f"{k} (shape {a.shape} -> {b.shape})")
            continue
        rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-300)
        worst = float(np.nanmax(rel, initial=0.0))
        print(f"  {k}: aggregates differ, largest relative difference {worst:.2g}")
        if worst > 1e-12:
            bad.append(k)
    same = sum(want[k]["all"] == got[k]["all"] for k in want)
    print(f"all: {same}/{len(want)} bit-identical; beyond 1e-12: {bad}")
    sys.exit(1 if moved or bad else 0)


if __name__ == "__main__":
    main()
