"""Autoscaled cloud GPU replicas: cold starts, an autoscaler process, per-second or per-hour
billing, spot preemptions with a warning and an optional on-demand fallback.

A replica is `tp` GPUs. Its price is the instance price times `tp / gpus_per_instance` when it
needs less than one instance (the share of a bigger instance, a stand-in for the smaller SKU of
the same family) and `ceil(tp / gpus_per_instance)` whole instances otherwise.
Billing runs from the provisioning request until the replica is released (drained, preempted or
the run ends); each replica's bill is rounded to the billing rule when it stops.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.engine.accounting import interval_overlap
from sim.engine.config import CloudFleetConfig
from sim.engine.dists import from_spec
from sim.engine.fleet import GpuFleet

POLICIES = ("inflight", "queue", "rate")
RATE_WINDOW_S = 60.0  # the rate policy looks at arrivals over the last minute, like SkyServe


def instances_per_replica(tp: int, gpus_per_instance: int) -> float:
    if tp < gpus_per_instance:
        return tp / gpus_per_instance
    return float(math.ceil(tp / gpus_per_instance))


def billed_seconds(duration_s: float, billing: str, min_billed_s: float) -> float:
    if billing == "per_hour":
        return max(1, math.ceil(duration_s / 3600 - 1e-9)) * 3600.0
    return max(duration_s, min_billed_s)


class CloudFleet(GpuFleet):
    kind = "cloud"

    def __init__(self, env, table, cfg: CloudFleetConfig, *, profile, rng, window_s, jump=True):
        _validate(cfg)
        own_rng, self._provision_rng, self._spot_rng = rng.spawn(3)
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
        self.merge_prefill = not (cfg.term == "spot" and cfg.spot_preemptions_per_hour > 0)
        self.instances = instances_per_replica(cfg.tp, cfg.gpus_per_instance)
        self.provision = from_spec(cfg.provision_s, "provision_s")
        self.load_s = float(profile.weight_load_s(cfg.weight_load_gbps)) if profile else 0.0
        # One bill per replica: [start_s, end_s (None while running), usd_per_s]
        self.bills: dict[int, list] = {}
        self.cold: dict[int, simpy.Process] = {}
        self.spot = cfg.term == "spot"
        initial = min(max(cfg.initial_replicas, cfg.min_replicas), cfg.max_replicas)
        for _ in range(initial):
            self.launch(warm_now=True)  # the fleet is already up when the workload starts
        self.autoscaler = Autoscaler(self, cfg)

    # -- lifecycle -----------------------------------------------------------------------------
    def active(self) -> list:
        """Replicas that count toward the fleet size: starting or warm (not draining)."""
        return [r for r in self.replicas if r.state in ("starting", "warm")]

    def launch(self, *, warm_now: bool = False, on_demand: bool = False):
        rep = self.new_replica()
        cfg = self.cfg
        price = cfg.fallback_price_usd_per_hour if on_demand else cfg.price_usd_per_hour
        self.bills[rep.rid] = [self.env.now, None, price * self.instances / 3600.0]
        self.log.append((self.env.now, "launch", rep.rid))
        if warm_now:
            self.warm(rep)
        else:
            self.events.add("cold_starts", self.env.now)
            self.cold[rep.rid] = self.env.process(self._cold_start(rep))
        if self.spot and not on_demand and cfg.spot_preemptions_per_hour > 0:
            self.env.process(self._spot_life(rep))
        return rep

    def _cold_start(self, rep):
        delay = float(self.provision.sample(self._provision_rng)) + self.load_s
        try:
            yield self.env.timeout(delay)
        except simpy.Interrupt:
            return  # cancelled by a scale-down or a spot preemption before it was ready
        if rep.state == "starting":
            self.warm(rep)

    def cancel(self, rep) -> None:
        rep.state = "dead"
        self.log.append((self.env.now, "cancel", rep.rid))
        proc = self.cold.get(rep.rid)
        if proc is not None and proc.is_alive:
            proc.interrupt()
        self.on_stop(rep)

    def _spot_life(self, rep):
        env, cfg = self.env, self.cfg
        yield env.timeout(self._spot_rng.exponential(3600.0 / cfg.spot_preemptions_per_hour))
        if rep.state == "dead":
            return
        self.log.append((env.now, "spot_warning", rep.rid))
        self.events.add("spot_kills", env.now)
        if cfg.fallback_on_demand:
            self.launch(on_demand=True)
        if rep.state == "starting":
            self.cancel(rep)
            return
        if rep.state == "warm":
            self.drain(rep)  # no new work during the warning; the batch may still finish
        yield env.timeout(cfg.spot_warning_s)
        if rep.state != "dead":
            self.kill(rep)

    def on_stop(self, rep) -> None:
        bill = self.bills[rep.rid]
        if bill[1] is None:
            bill[1] = self.env.now

    # -- accounting ----------------------------------------------------------------------------
    def _intervals(self, edges: np.ndarray):
        end = edges[-1]
        bills = list(self.bills.values())
        start = np.array([b[0] for b in bills], dtype=np.float64)
        stop = np.array([end if b[1] is None else min(b[1], end) for b in bills], dtype=np.float64)
        rate = np.array([b[2] for b in bills], dtype=np.float64)
        return start, stop, rate

    def window_costs(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Cost accrues at the instance rate while a replica lives; the rest of its billed time
        (minimum charge, started hour) is charged in the window where it stops."""
        n_w = len(edges) - 1
        running = np.zeros(n_w)
        rounding = np.zeros(n_w)
        if not self.bills:
            return {"instances": running, "billing_rounding": rounding}
        start, stop, rate = self._intervals(edges)
        for s, e, r in zip(start, stop, rate, strict=True):
            running += r * interval_overlap(edges, np.array([s]), np.array([e]))
            extra = billed_seconds(e - s, self.cfg.billing, self.cfg.min_billed_s) - (e - s)
            if extra > 0:
                k = min(max(int(np.searchsorted(edges, e, side="right")) - 1, 0), n_w - 1)
                rounding[k] += r * extra
        return {"instances": running, "billing_rounding": rounding}

    def replicas_in(self, edges: np.ndarray) -> np.ndarray:
        widths = np.diff(edges)
        if not self.bills:
            return np.zeros(len(widths))
        start, stop, _ = self._intervals(edges)
        area = interval_overlap(edges, start, stop)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(widths > 0, area / widths, 0.0)

    def billed_gpu_s(self, edges: np.ndarray) -> np.ndarray:
        return self.replicas_in(edges) * np.diff(edges) * self.cfg.tp


class Autoscaler:
    """Every `decision_interval_s`, compare the wanted replica count with the current one; act only
    when the same direction has been wanted for `upscale_delay_s` / `downscale_delay_s`.

    Policies: inflight: ceil(requests in the fleet / target); rate: ceil(arrivals per second over
    the last minute / target); queue: one more replica while waiting requests per replica exceed
    the target, one fewer while nothing waits at all.
    """

    def __init__(self, fleet: CloudFleet, cfg: CloudFleetConfig):
        self.fleet = fleet
        self.cfg = cfg
        self.up_since: float | None = None
        self.down_since: float | None = None
        self.process = fleet.env.process(self.scale())

    def wanted(self, n: int) -> int:
        cfg, fleet = self.cfg, self.fleet
        if cfg.policy == "inflight":
            want = math.ceil(fleet.outstanding() / cfg.target)
        elif cfg.policy == "rate":
            recent = fleet.arrivals_since(fleet.env.now - RATE_WINDOW_S)
            want = math.ceil(recent / RATE_WINDOW_S / cfg.target)
        else:
            queued = fleet.queued()
            if queued > cfg.target * max(n, 1) or (n == 0 and queued > 0):
                want = n + 1
            elif queued == 0 and (n > 1 or fleet.outstanding() == 0):
                want = n - 1
            else:
                want = n
        if fleet.outstanding() > 0:
            # Scale-to-zero must never strand work: a rate window that has emptied (or a
            # cancelled cold start) would otherwise leave waiting requests with no replica.
            want = max(want, 1)
        return min(max(want, cfg.min_replicas), cfg.max_replicas)

    def scale(self):
        env, cfg, fleet = self.fleet.env, self.cfg, self.fleet
        while True:
            fleet.next_decision_s = env.now + cfg.decision_interval_s  # the timeout's time
            yield env.timeout(cfg.decision_interval_s)
            now = env.now
            active = fleet.active()
            n = len(active)
            want = self.wanted(n)
            if want > n:
                self.down_since = None
                if self.up_since is None:
                    self.up_since = now
                if now - self.up_since >= cfg.upscale_delay_s - 1e-9:
                    fleet.log.append((now, f"scale_up {n}->{want}", -1))
                    fleet.events.add("scale_up", now)
                    for _ in range(want - n):
                        fleet.launch()
                    self.up_since = None
            elif want < n:
                self.up_since = None
                if self.down_since is None:
                    self.down_since = now
                if now - self.down_since >= cfg.downscale_delay_s - 1e-9:
                    fleet.log.append((now, f"scale_down {n}->{want}", -1))
                    fleet.events.add("scale_down", now)
                    # Cancel replicas still starting first (newest first), then drain idlest.
                    victims = sorted(
                        active, key=lambda r: (r.state != "starting", r.outstanding, -r.rid)
                    )[: n - want]
                    for rep in victims:
                        if rep.state == "starting":
                            fleet.cancel(rep)
                        else:
                            fleet.drain(rep)
                    self.down_since = None
            else:
                self.up_since = self.down_since = None


def _validate(cfg: CloudFleetConfig) -> None:
    """What the schema cannot check when the config is made: values resolved from the warehouse
    later (bounds and choices are the schema's, sim/engine/config.py)."""
    if cfg.price_usd_per_hour is None:
        raise ValueError(f"price_usd_per_hour: price not resolved for fleet {cfg.name!r}")
    if cfg.gpus_per_instance is None:
        raise ValueError(f"gpus_per_instance: not resolved for fleet {cfg.name!r}")
    if cfg.fallback_on_demand and cfg.fallback_price_usd_per_hour is None:
        raise ValueError("fallback_price_usd_per_hour: needed with fallback_on_demand = true")
