"""Fingerprints of `simulate_fleet` results over a set of fleet set-ups, to check that an engine
change that should be exact is bit-for-bit exact.

Run: .venv/bin/python bench/engine_fingerprint.py save FILE   (before the change)
     .venv/bin/python bench/engine_fingerprint.py check FILE  (after: lists the set-ups that moved)
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


def fingerprints() -> dict[str, str]:
    out = {}
    for name, cfg, factory in setups():
        w = poisson_workload(np.random.default_rng(3), 4000, 6.0)
        for horizon in (None, 400.0):
            r = simulate_fleet(
                cfg, w, profile_factory=factory, rng=np.random.default_rng(5), horizon_s=horizon
            )
            h = hashlib.sha256()
            for arr in (r.start_s, r.first_token_s, r.finish_s, r.status, r.attempts, r.cost_usd):
                h.update(np.ascontiguousarray(arr).tobytes())
            h.update(r.timeseries.write_csv().encode())
            h.update(repr(sorted(r.cost_breakdown_usd.items())).encode())
            meta = {k: v for k, v in r.meta.items()}
            h.update(json.dumps(meta, sort_keys=True, default=str).encode())
            out[f"{name}/{horizon}"] = h.hexdigest()[:16]
    return out


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    got = fingerprints()
    if mode == "save":
        path.write_text(json.dumps(got, indent=1))
        print(f"saved {len(got)} fingerprints")
        return
    want = json.loads(path.read_text())
    moved = [k for k in want if want[k] != got.get(k)]
    print(f"{len(want) - len(moved)}/{len(want)} identical; moved: {moved}")
    sys.exit(1 if moved else 0)


if __name__ == "__main__":
    main()
