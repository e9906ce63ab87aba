"""`slo_robust`: does a GPU fleet's SLO verdict survive the serving model's own error?

Each engine profile carries the band of its held-out error on step time (`error_band` in
sim/perf/data/profiles/*.toml, via `sim.perf.engines.profile_error_band`). The run is repeated with
every step time multiplied by the band's low and high factors, with the same seeds (common random
numbers), and each GPU fleet is judged again:
  met: meets the SLO at both edges; missed: misses at both; uncertain: the verdict flips.
API fleets have no step-time model: their `slo_robust` is their verdict.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from sim.run.replications import DEFAULT_BACKEND, Backend, simulate_batch
from sim.summary import RunSummary, summarize


class ScaledProfile:
    """A serving profile whose step times are `factor` times the wrapped one's; everything else
    (memory, KV capacity, fit) is the wrapped profile's."""

    def __init__(self, profile: Any, factor: float):
        self._profile = profile
        self._factor = float(factor)

    def step_time_s(self, *args, **kwargs) -> float:
        return self._profile.step_time_s(*args, **kwargs) * self._factor

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the engine's exact fast paths read private terms: not these
            raise AttributeError(name)
        return getattr(self._profile, name)


def _scaled_factory(scenario, *, factor: float, base):
    inner = base(scenario)

    def factory(*args, **kwargs):
        return ScaledProfile(inner(*args, **kwargs), factor)

    return factory


def edge_backend(factor: float, backend: Backend | None = None) -> Backend:
    """The run's backend with every serving profile's step times multiplied by `factor`."""
    backend = backend or DEFAULT_BACKEND
    factory = functools.partial(_scaled_factory, factor=factor, base=backend.profile_factory)
    return dataclasses.replace(backend, profile_factory=factory)


def error_band(scenario) -> tuple[float, float]:
    """The widest held-out error band of the engine profiles the scenario's GPU fleets use."""
    from sim.perf.engines import profile_error_band

    lo, hi = 1.0, 1.0
    for fleet in scenario.fleets:
        engine = getattr(fleet, "engine", None)
        if engine is None or engine.service != "physics":
            continue
        flo, fhi = profile_error_band(engine.profile)
        lo, hi = min(lo, flo), max(hi, fhi)
    return lo, hi


def with_robustness(
    summary: RunSummary, scenario, *, n: int, seed: int, executor=None, backend=None
) -> RunSummary:
    """`summary` with `slo_robust` set on every fleet (see the module docstring). Only the GPU
    fleets run again, each on its own stream, so the edges differ from the run only in step
    times."""
    lo, hi = error_band(scenario)
    index = [
        k
        for k, f in enumerate(scenario.fleets)
        if getattr(f, "engine", None) is not None and f.engine.service == "physics"
    ]
    gpu = {scenario.fleets[k].name for k in index}
    verdicts: dict[str, list[bool]] = {f.name: [f.meets_slo] for f in summary.fleets}
    if gpu and (lo, hi) != (1.0, 1.0):
        edges = [edge_backend(factor, backend) for factor in (lo, hi)]
        only = dataclasses.replace(scenario, fleets=tuple(scenario.fleets[k] for k in index))
        for edge in edges:
            (reps,), _cpu = simulate_batch(
                [scenario],
                n=n,
                seed=seed,
                executor=executor,
                backend=edge,
                only_fleets=index,
                requests="none",
            )
            for fleet in summarize(only, reps, seed=seed).fleets:
                verdicts[fleet.name].append(fleet.meets_slo)
    fleets = []
    for fleet in summary.fleets:
        seen = verdicts[fleet.name]
        if fleet.name not in gpu:
            robust = "met" if fleet.meets_slo else "missed"
        elif len(seen) == 1:
            robust = "unknown"  # the profile has no held-out error to move the step times by
        else:
            robust = "met" if all(seen) else "missed" if not any(seen) else "uncertain"
        fleets.append(dataclasses.replace(fleet, slo_robust=robust))
    return dataclasses.replace(summary, fleets=tuple(fleets), step_time_band=(lo, hi))
