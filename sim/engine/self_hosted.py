"""A fixed fleet of owned servers: always on, capex amortised, power by measured utilisation,
colocation by time; optionally overflowing to a metered API when its queues get long (hybrid).
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.api import ApiFleet
from sim.engine.config import MONTH_S, YEAR_S, SelfHostedFleetConfig
from sim.engine.fleet import GpuFleet
from sim.engine.prefix import no_prefix_identity
from sim.engine.requests import SlotTable


def capex_usd(cfg: SelfHostedFleetConfig) -> float:
    return cfg.servers * (cfg.gpus_per_server * cfg.gpu_price_usd + cfg.server_price_usd)


def amortised_usd_per_year(
    capex: float, residual_frac: float, lifetime_years: float, cost_of_capital: float
) -> float:
    """Straight-line (capex - residual) / lifetime; with a cost of capital r > 0, the annuity that
    repays capex minus the present value of the residual over the lifetime."""
    residual = residual_frac * capex
    if cost_of_capital <= 0:
        return (capex - residual) / lifetime_years
    r, n = cost_of_capital, lifetime_years
    principal = capex - residual / (1 + r) ** n
    return principal * r / (1 - (1 + r) ** -n)


def gpu_power_w(profile, util: float) -> float:
    """Per-GPU power: the perf model's curve, else idle + util * (max - idle). Without a profile
    (exponential validation mode with no model) the GPU draw is unknown and counted as zero."""
    if profile is None:
        return 0.0
    if hasattr(profile, "power_w"):
        return float(profile.power_w(util))
    gpu = profile.gpu
    return gpu.idle_w + util * (gpu.max_w - gpu.idle_w)


class SelfHostedFleet(GpuFleet):
    kind = "self_hosted"

    def __init__(
        self, env, table, cfg: SelfHostedFleetConfig, *, profile, rng, window_s, jump=True
    ):
        if cfg.gpu_price_usd is None:
            raise ValueError(f"gpu_price_usd: price not resolved for fleet {cfg.name!r}")
        n_replicas = cfg.servers * cfg.gpus_per_server // cfg.tp
        if n_replicas < 1:
            raise ValueError(
                f"tp: {cfg.tp} GPUs per replica but only {cfg.servers * cfg.gpus_per_server} GPUs"
            )
        own_rng, overflow_rng = rng.spawn(2)
        super().__init__(
            env,
            table,
            name=cfg.name,
            engine=cfg.engine,
            profile=profile,
            gpus_per_replica=cfg.tp,
            rng=own_rng,
            window_s=window_s,
            jump=jump,
        )
        self.cfg = cfg
        if cfg.overflow is None:
            self.next_decision_s = math.inf  # nothing but arrivals moves a queued request
        self.n_gpus = cfg.servers * cfg.gpus_per_server  # GPUs outside any replica still idle-draw
        self.capex_usd = capex_usd(cfg)
        self.amortised_usd_per_s = (
            amortised_usd_per_year(
                self.capex_usd, cfg.residual_frac, cfg.lifetime_years, cfg.cost_of_capital
            )
            / YEAR_S
        )
        self.colo_usd_per_s = cfg.colo_usd_per_month * cfg.servers / MONTH_S
        self.overflow = ApiFleet(cfg.overflow, table, overflow_rng) if cfg.overflow else None
        # Streaming: the overflowed requests (request, arrival, prompt, output, cached), for
        # the overflow API to settle after the run, as on the exact path; with provider prompt
        # caching, each one's prefix block ids too (the API reads its cache with them)
        self.handed_over: list[tuple] = []
        self.handed_ids: list | None = (
            [] if cfg.overflow is not None and cfg.overflow.prompt_cache == "provider" else None
        )
        self.n_replicas = n_replicas
        for _ in range(n_replicas):
            self.warm(self.new_replica())

    def divert(self, i: int) -> bool:
        if self.overflow is None:
            return False
        if self.queued() / self.n_replicas <= self.cfg.overflow_queue_threshold:
            return False
        if isinstance(self.table, SlotTable):  # streaming: the request leaves its slot
            self.handed_over.append(self.table.hand_over(i))
            if self.handed_ids is not None:
                self.handed_ids.append(self._handed_ids(self._arriving))
        else:
            self.overflow.submit(i, self.env.now)
            self.table.served_by[i] = 1
        # Handed over: the API decides its fate after the run, so it counts as settled here.
        self.table.n_terminal += 1
        if self.table.n_terminal >= self.table.n and not self.done.triggered:
            self.done.succeed()
        return True

    def _handed_ids(self, k: int) -> np.ndarray:
        """The prefix block ids of the current chunk's request `k` (a ValueError naming the
        option when the workload has none)."""
        ids = self._chunk_ids
        if ids is None:
            raise no_prefix_identity(f'{self.name}: overflow.prompt_cache = "provider"')
        offsets, values = ids
        return np.asarray(values[offsets[k] : offsets[k + 1]], dtype=np.int64)

    def billed_gpu_s(self, edges: np.ndarray) -> np.ndarray:
        return np.diff(edges) * self.n_gpus

    def replicas_in(self, edges: np.ndarray) -> np.ndarray:
        return np.full(len(edges) - 1, float(self.n_replicas))

    def window_costs(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        cfg = self.cfg
        widths = np.diff(edges)
        busy = self.busy_gpu_s.array(len(widths))
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(widths > 0, busy / (self.n_gpus * widths), 0.0)
        util = np.clip(util, 0.0, 1.0)
        gpu_w = np.array([gpu_power_w(self.profile, u) for u in util]) * self.n_gpus
        facility_w = (gpu_w + cfg.host_power_w * cfg.servers) * cfg.pue
        return {
            "capex": widths * self.amortised_usd_per_s,
            "colo": widths * self.colo_usd_per_s,
            "power": facility_w * widths / 3.6e6 * cfg.electricity_usd_per_kwh,
        }
