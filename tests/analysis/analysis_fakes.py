"""Constructed cases with known answers, standing in for the simulator (sim.analysis.runner.Evaluate).

Every fake returns a real `RunSummary` built from the real record types, and its verdict comes
from the real cheapest-fleet rule; only the numbers are constructed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.scenario import Scenario, load_scenario
from sim.summary import FleetSummary, RunSummary, Slo, Stat, WorkloadSummary, cheapest

CASE_TOML = """\
[scenario]
name = "constructed"
[workload]
generator = "poisson"
rate_per_s = 2.0
duration_s = 3600
prompt_tokens = { dist = "const", value = 100 }
output_tokens = { dist = "const", value = 100 }
{rate_scale}
[model]
name = "llama-3.1-8b"
[[fleet]]
name = "api"
kind = "api"
price_usd_per_mtok_input = 1.0
price_usd_per_mtok_output = 1.0
[[fleet]]
name = "cloud"
kind = "cloud"
gpu = "h100-sxm"
price_usd_per_hour = 2.0
gpus_per_instance = 1
max_replicas = 2
initial_replicas = 1
"""


def case_scenario(folder: Path, rate_scale: float | None = None, overrides=()) -> Scenario:
    """A small valid scenario (prices set in the file, so no warehouse is needed)."""
    path = Path(folder) / "case.toml"
    line = "" if rate_scale is None else f"rate_scale = {rate_scale}"
    path.write_text(CASE_TOML.replace("{rate_scale}", line))
    return load_scenario(path, list(overrides), check_fit=False)


def _stat(value: float, values: list[float] | None = None) -> Stat:
    return Stat(value, (value * 0.99, value * 1.01), tuple(values or [value]))


def fleet(
    name: str,
    kind: str,
    total_usd: float,
    requests: float,
    meets_slo: bool = True,
    values=None,
    prices=None,
) -> FleetSummary:
    """`values`: per-replication total costs (their mean must be `total_usd`)."""
    return FleetSummary(
        name=name,
        kind=kind,
        total_cost_usd=_stat(total_usd, values),
        usd_per_mtok_output=_stat(total_usd),
        usd_per_1k_requests=_stat(1000 * total_usd / requests),
        success_rate=_stat(1.0),
        slo_attainment=_stat(1.0 if meets_slo else 0.5),
        slo_attainment_by_target={},
        latency_s={
            "ttft": {"p50": Stat(0.2), "p90": Stat(0.4), "p99": Stat(0.8 if meets_slo else 9.0)},
            "e2e": {"p50": Stat(2.0), "p90": Stat(4.0), "p99": Stat(8.0)},
            "tpot": {},
        },
        meets_slo=meets_slo,
        requests={"arrivals": requests, "ok": requests},
        cost_breakdown_usd={"compute": total_usd},
        prices=prices or {},
    )


def summary(fleets, *, seed=0, replications=1, scenario="constructed") -> RunSummary:
    fleets = tuple(fleets)
    return RunSummary(
        scenario=scenario,
        description="",
        workload=WorkloadSummary("constructed", Stat(None), Stat(None)),
        seed=seed or 0,
        replications=replications or 1,
        price_as_of="latest",
        slo=Slo({"ttft_p99_s": 2.0}, 0.99),
        fleets=fleets,
        cheapest_meeting_slo=cheapest(fleets),
    )


def value_at(scenario: Scenario, dotted: str):
    """The raw value of `fleet.1.max_replicas`-style keys in the (varied) scenario."""
    node = scenario.raw
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


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
        self.calls: list[float] = []  # the rate_scale of each evaluated variant
        self.dates: list[str] = []  # and its price date

    def __call__(self, scenario: Scenario, *, seed, replications, workers) -> RunSummary:
        rate_scale = scenario.workload.rate_scale or 1.0
        self.calls.append(rate_scale)
        self.dates.append(scenario.price_as_of)
        rps = self.base_rps * rate_scale
        requests = rps * self.duration_s
        api_usd = self.usd_per_request * requests
        owned_usd = self.usd_per_hour * self.duration_s / 3600
        n = len(self.api_factors)
        api = fleet("api", "api", api_usd, requests, values=(api_usd * self.api_factors).tolist())
        meets = rps <= self.capacity_rps
        owned = fleet("owned", "self_hosted", owned_usd, requests, meets, values=[owned_usd] * n)
        return summary([api, owned], seed=seed, replications=replications)
