"""Small stand-ins shared by the engine tests: a perf profile with a known step-time formula and
workload builders. The fake profile has the same shape as `sim.perf.ServingProfile`."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from sim.workload import Workload


@dataclass(frozen=True)
class FakeGpu:
    idle_w: float = 100.0
    max_w: float = 700.0


@dataclass(frozen=True)
class FakeProfile:
    """step = overhead + max(compute, memory): compute grows with tokens and attention pairs,
    memory with weights + KV read. `roofline=False` drops compute (purely affine steps)."""

    kv_capacity_tokens: int = 100_000
    fits: bool = True
    overhead_s: float = 0.002
    per_token_s: float = 2e-5
    per_pair_s: float = 1e-9
    weights_s: float = 0.010
    per_ctx_token_s: float = 2e-7
    per_seq_s: float = 1e-5
    roofline: bool = True
    load_s: float = 30.0
    weights_bytes_per_gpu: float = 16e9
    gpu: FakeGpu = FakeGpu()

    def step_time_s(
        self, prefill_tokens=0, prefill_attn_pairs=0.0, decode_seqs=0, decode_ctx_tokens=0
    ):
        tokens = prefill_tokens + decode_seqs
        if tokens <= 0:
            return 0.0
        memory = self.weights_s + self.per_ctx_token_s * decode_ctx_tokens
        compute = self.per_token_s * tokens + self.per_pair_s * (
            prefill_attn_pairs + decode_ctx_tokens
        )
        core = max(memory, compute) if self.roofline else memory + compute
        return self.overhead_s + core + self.per_seq_s * decode_seqs

    def weight_load_s(self, load_gbps: float) -> float:
        return self.load_s

    def power_w(self, util: float) -> float:
        return self.gpu.idle_w + util * (self.gpu.max_w - self.gpu.idle_w)


def factory_for(profile):
    def factory(gpu, tp, precision, mem_util):
        return profile

    return factory


def workload(arrival_s, prompt, output, cached=None) -> Workload:
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    n = len(arrival_s)
    prompt = np.broadcast_to(np.asarray(prompt, dtype=np.int64), (n,)).copy()
    output = np.broadcast_to(np.asarray(output, dtype=np.int64), (n,)).copy()
    if cached is not None:
        cached = np.broadcast_to(np.asarray(cached, dtype=np.int64), (n,)).copy()
    return Workload(arrival_s, prompt, output, cached, name="test")


def poisson_workload(rng, n, rate_per_s, prompt_mean=500, output_mean=150) -> Workload:
    arrivals = np.cumsum(rng.exponential(1 / rate_per_s, n))
    prompt = rng.integers(1, 2 * prompt_mean, n)
    output = rng.integers(1, 2 * output_mean, n)
    return Workload(arrivals, prompt, output, name="poisson")


def lockstep_workload(seed: int, n: int, tick: float) -> Workload:
    """Arrivals on a grid of `tick` (many at the same instant) with a few equal lengths: with
    dyadic step times (test_hold.DYADIC) replicas run in lockstep and their events coincide in
    time, where the order of same-time events matters."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.integers(0, 4, n)) * tick
    prompt = rng.choice([64, 128, 256], n)
    output = rng.choice([8, 16, 64, 128], n)
    return workload(arrivals, prompt, output)


def assert_same_run(a, b) -> None:
    """Two runs agree bit for bit: every request's times, status, attempts and cost, the time
    series and the event counts."""
    for field in ("start_s", "first_token_s", "finish_s", "status", "attempts", "cost_usd"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), field)
    assert a.timeseries.equals(b.timeseries)
    assert a.meta["event_counts"] == b.meta["event_counts"]


def run_switched(cfg, w, profile, monkeypatch, *, hold=True, chain=True, horizon_s=None):
    """One run with held jump ends (`GpuFleet.hold_ok`) and chained events (`chain_ok`) on or
    off. Returns the result and counts: SimPy events and runs ended by a chained completion
    (`GpuFleet._on_done_at`)."""
    import simpy

    from sim.engine import simulate_fleet
    from sim.engine.fleet import GpuFleet

    monkeypatch.setattr(GpuFleet, "hold_ok", hold)
    monkeypatch.setattr(GpuFleet, "chain_ok", chain)
    out = SimpleNamespace(events=0, ended=0)
    step, done_at = simpy.Environment.step, GpuFleet._on_done_at

    def counting_step(env):
        out.events += 1
        step(env)

    def counting_done(fleet, ev):
        out.ended += 1
        done_at(fleet, ev)

    monkeypatch.setattr(simpy.Environment, "step", counting_step)
    monkeypatch.setattr(GpuFleet, "_on_done_at", counting_done)
    out.result = simulate_fleet(
        cfg, w, profile_factory=factory_for(profile), rng=np.random.default_rng(2),
        horizon_s=horizon_s,
    )  # fmt: skip
    monkeypatch.undo()
    return out
