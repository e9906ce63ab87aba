"""Running scenarios: replications with common random numbers (serial or in a process pool) and
the whole `sim run` (prices, replications, summary, outputs)."""

from sim.run.replications import (
    DEFAULT_BACKEND,
    Backend,
    ReplicationResult,
    ensure_prices,
    run_replications,
)
from sim.run.scenario_run import RunOutput, run_scenario

__all__ = [
    "DEFAULT_BACKEND",
    "Backend",
    "ReplicationResult",
    "RunOutput",
    "ensure_prices",
    "run_replications",
    "run_scenario",
]
