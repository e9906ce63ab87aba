"""Constructed cases with known answers, standing in for the simulator (sim.analysis.runner.Evaluate)."""

from __future__ import annotations

import numpy as np


def _stat(value: float, values: list[float] | None = None) -> dict:
    return {"mean": value, "ci95": [value * 0.99, value * 1.01], "values": values or [value]}


def fleet(
    name: str, kind: str, total_usd: float, requests: float, meets_slo: bool = True, values=None
) -> dict:
    """`values`: per-replication total costs (their mean must be `total_usd`)."""
    return {
        "name": name,
        "kind": kind,
        "total_cost_usd": _stat(total_usd, values),
        "usd_per_1k_requests": _stat(1000 * total_usd / requests),
        "usd_per_mtok_output": _stat(total_usd),
        "slo_attainment": _stat(1.0 if meets_slo else 0.5),
        "meets_slo": meets_slo,
        "ttft_s": {"p50": {"mean": 0.2}, "p90": {"mean": 0.4}, "p99": {"mean": 0.8}},
        "e2e_s": {"p50": {"mean": 2.0}, "p90": {"mean": 4.0}, "p99": {"mean": 8.0}},
        "cost_breakdown_usd": {"compute": total_usd},
    }


def overrides_dict(overrides) -> dict[str, str]:
    return dict(item.split("=", 1) for item in overrides)


class ApiVersusOwned:
    """An API at `usd_per_request` against an owned fleet costing `usd_per_hour` whatever the load,
    which meets the SLO only up to `capacity_rps`. Traffic is `base_rps * rate_scale` for
    `duration_s`. Break-even: base_rps * rate_scale = usd_per_hour / (3600 * usd_per_request).
    """

    def __init__(
        self,
        usd_per_request=0.002,
        usd_per_hour=36.0,
        base_rps=2.0,
        duration_s=3600.0,
        capacity_rps=1e9,
        noise=0.0,
        replications=1,
    ):
        self.usd_per_request = usd_per_request
        self.usd_per_hour = usd_per_hour
        self.base_rps = base_rps
        self.duration_s = duration_s
        self.capacity_rps = capacity_rps
        # Replication r's API bill is off by the factor (1 + noise * e_r), the same e_r at every
        # scale (common random numbers); e has mean exactly 0 so the mean bill stays exact.
        e = np.random.default_rng(0).standard_normal(replications)
        self.api_factors = 1.0 + noise * (e - e.mean())
        self.calls: list[list[str]] = []

    def __call__(self, scenario_path, overrides, *, seed, replications, workers) -> dict:
        self.calls.append(list(overrides))
        rate_scale = float(overrides_dict(overrides).get("workload.rate_scale", 1.0))
        rps = self.base_rps * rate_scale
        requests = rps * self.duration_s
        api_usd = self.usd_per_request * requests
        owned_usd = self.usd_per_hour * self.duration_s / 3600
        n = len(self.api_factors)
        api = fleet("api", "api", api_usd, requests, values=(api_usd * self.api_factors).tolist())
        meets = rps <= self.capacity_rps
        owned = fleet("owned", "self_hosted", owned_usd, requests, meets, values=[owned_usd] * n)
        return {
            "scenario": "constructed",
            "seed": seed,
            "replications": replications or 1,
            "fleets": [api, owned],
        }
