"""How analyses get a summary for one scenario variant: through E2's `sim.run`, or a fake in tests.

An `Evaluate` takes the scenario path and `--set`-style overrides and returns the content of
`summary.json` for that variant. Analyses take one as a parameter so their logic is testable on
constructed cases with known answers, without running the simulator.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

from sim.errors import InputError

Evaluate = Callable[..., dict]  # (scenario_path, overrides, *, seed, replications, workers) -> dict


def simulate_summary(
    scenario_path: Path,
    overrides: Sequence[str],
    *,
    seed: int | None,
    replications: int | None,
    workers: int | None,
    warehouse=None,
) -> dict:
    """Run the scenario variant with the real simulator and return its summary dict.

    Prices are resolved from `warehouse` (default: the user's, read-only) at the variant's
    `scenario.price_as_of`.
    """
    # Imported here so analyses (and their tests) load without the simulator being importable.
    from sim.run import default_workers, ensure_prices, run_replications, summarize
    from sim.scenario import load_scenario

    # Resolved here, not inside run_replications, so the summary carries the price provenance.
    scenario = ensure_prices(load_scenario(scenario_path, list(overrides)), warehouse)
    n = replications if replications is not None else int(getattr(scenario, "replications", 1) or 1)
    run_seed = seed if seed is not None else int(getattr(scenario, "seed", 0) or 0)
    workers = workers if workers is not None else default_workers(n)
    reps = run_replications(scenario, n=n, seed=run_seed, workers=workers)
    return summarize(scenario, reps, seed=run_seed)


def read_toml(scenario_path: Path) -> dict:
    path = Path(scenario_path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(str(path), None, "no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, f"not valid TOML: {exc}") from None


def base_rate_scale(scenario_path: Path, overrides: Sequence[str] = ()) -> float:
    """The scenario's own `workload.rate_scale` after `--set` overrides (1 when absent), so sweeps
    multiply rather than replace it."""
    from sim.scenario import apply_override

    raw = read_toml(scenario_path)
    for item in overrides:
        apply_override(raw, item)
    value = raw.get("workload", {}).get("rate_scale", 1.0)
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise InputError(
            str(scenario_path), "workload.rate_scale", f"not a number: {value!r}"
        ) from None
    if not scale > 0:
        raise InputError(str(scenario_path), "workload.rate_scale", "must be positive")
    return scale
