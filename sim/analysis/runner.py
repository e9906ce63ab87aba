"""How analyses get a summary for one scenario variant: the real simulator, or a fake in tests.

An `Evaluate` takes a loaded, typed `Scenario` (a variant made with `Scenario.varied`) and returns
its `RunSummary`. Analyses take one as a parameter so their logic is testable on constructed
cases with known answers, without running the simulator.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.summary import RunSummary

Evaluate = Callable[..., RunSummary]  # (scenario, *, seed, replications, workers) -> RunSummary


def simulate_summary(
    scenario,
    *,
    seed: int | None,
    replications: int | None,
    workers: int | None,
    warehouse=None,
) -> RunSummary:
    """Run the scenario variant with the real simulator and return its summary.

    Prices are resolved from `warehouse` (default: the user's, read-only) at the variant's
    `scenario.price_as_of`.
    """
    from sim.run import default_workers, ensure_prices, run_replications
    from sim.summary import summarize

    # Resolved here, not inside run_replications, so the summary carries the price provenance.
    scenario = ensure_prices(scenario, warehouse)
    n = replications if replications is not None else scenario.replications
    run_seed = seed if seed is not None else scenario.seed
    workers = workers if workers is not None else default_workers(n)
    reps = run_replications(scenario, n=n, seed=run_seed, workers=workers)
    return summarize(scenario, reps, seed=run_seed)


def base_rate_scale(scenario) -> float:
    """The scenario's own `workload.rate_scale` (1 when absent), so sweeps multiply rather than
    replace it."""
    scale = scenario.workload.rate_scale
    return 1.0 if scale is None else float(scale)
