"""How analyses get a summary for one scenario variant: the real simulator, or a fake in tests.

An `Evaluate` takes a loaded, typed `Scenario` (a variant made with `Scenario.varied`) and returns
its `RunSummary`. Analyses take one as a parameter so their logic is testable on constructed
cases with known answers, without running the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.backends import Executor
from sim.summary import RunSummary

Evaluate = Callable[..., RunSummary]  # (scenario, *, seed, replications, workers) -> RunSummary


@dataclass(frozen=True)
class Simulate:
    """The real simulator as an `Evaluate`: prices from `warehouse` (default: the user's, read
    only) at each variant's `scenario.price_as_of`, tasks on `executor` (default: serial, or a
    local pool of `workers` processes).

    `many` evaluates several variants as one batch of (variant, replication, fleet) tasks, so a
    sweep's points run side by side on a process pool or a Ray cluster; the summaries are the
    same as evaluating the variants one by one."""

    warehouse: Any = None
    executor: Executor | None = None

    def __call__(self, scenario, *, seed, replications, workers) -> RunSummary:
        (summary,) = self.many([scenario], seed=seed, replications=replications, workers=workers)
        return summary

    def many(self, scenarios, *, seed, replications, workers) -> list[RunSummary]:
        from sim.run import ensure_prices
        from sim.run.replications import simulate_batch
        from sim.summary import summarize

        # Resolved here, not inside the tasks, so each summary carries its price provenance.
        priced = [ensure_prices(sc, self.warehouse) for sc in scenarios]
        ns = [replications if replications is not None else sc.replications for sc in priced]
        seeds = [seed if seed is not None else sc.seed for sc in priced]
        # Default: a local pool, one process per core (at most one per task).
        executor = self.executor or Executor("process", workers=workers)
        batch, _cpu = simulate_batch(priced, n=ns, seed=seeds, executor=executor)
        return [
            summarize(sc, reps, seed=sd) for sc, reps, sd in zip(priced, batch, seeds, strict=True)
        ]


simulate_summary = Simulate()


def evaluate_all(evaluate: Evaluate, scenarios, **options) -> list[RunSummary]:
    """Every variant's summary: in one batch when the evaluator can (`Simulate.many`), else one by
    one (a test's fake)."""
    many = getattr(evaluate, "many", None)
    if many is not None:
        return many(list(scenarios), **options)
    return [evaluate(sc, **options) for sc in scenarios]


def base_rate_scale(scenario) -> float:
    """The scenario's own `workload.rate_scale` (1 when absent), so sweeps multiply rather than
    replace it."""
    scale = scenario.workload.rate_scale
    return 1.0 if scale is None else float(scale)
