"""A whole `sim run`: resolve prices once, run the replications, summarise them into a typed
`RunSummary`, write the run directory and record the run in the warehouse."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.backends import Executor
from sim.engine.rows import DEFAULT_REQUESTS
from sim.errors import InputError
from sim.run.replications import Backend, Progress, ensure_prices, run_replications
from sim.run.robust import with_robustness
from sim.scenario import Scenario
from sim.summary import RunSummary, summarize


@dataclass
class RunOutput:
    run_id: str
    run_dir: Path
    summary: RunSummary
    paths: dict[str, Path]
    recorded: bool = False
    db_path: str | None = None  # the warehouse the run priced from and recorded to


def run_scenario(
    scenario: Scenario,
    *,
    out_dir: Path | None = None,
    seed: int | None = None,
    replications: int | None = None,
    workers: int | None = None,
    warehouse: Any = None,
    record: bool = True,
    progress: Progress | None = None,
    backend: Backend | None = None,
    db_path: str | None = None,
    robust: bool = True,
    executor: Executor | None = None,
    requests: str = DEFAULT_REQUESTS,
) -> RunOutput:
    """Resolve prices, run the replications, write the run directory and record it in the warehouse.

    `warehouse` is an open `warehouse.Warehouse` (read-write when `record`); when None one is opened
    on `db_path` (None = $INFERCOST_DB or the per-user default) only if prices or recording need it.
    `robust` re-judges GPU fleets at the edges of the serving model's error (`slo_robust`).
    Each fleet of each replication is a task on `executor` (default: serial when `workers` is 1,
    else a local pool of `workers` processes, one per core by default); results do not depend on
    where tasks run. `requests` ("all", "sample:N", "none") chooses the rows of requests.parquet.
    """
    from sim import outputs
    from sim.pricing import needs_prices, stale_price_warnings

    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    seed = scenario.seed if seed is None else seed
    n = scenario.replications if replications is None else replications
    if n < 1:
        raise InputError("--replications", None, f"must be >= 1, got {n}")
    if executor is None:  # a local pool: one process per core, at most one per task
        executor = Executor("process", workers=workers)
    scenario = dataclasses.replace(scenario, seed=seed, replications=n)

    outputs.check_out_dir(out_dir)
    owned = None
    if warehouse is None and (record or needs_prices(scenario)):
        from warehouse import Warehouse

        warehouse = owned = Warehouse(path=db_path, read_only=not record)
    where = getattr(warehouse, "path", None) or db_path
    used_db = str(Path(where).resolve()) if where else None
    try:
        scenario = ensure_prices(scenario, warehouse)
        reps = run_replications(
            scenario,
            n=n,
            seed=seed,
            executor=executor,
            progress=progress,
            backend=backend,
            requests=requests,
        )
        warnings = stale_price_warnings(scenario, scenario.price_max_age_days)
        summary = summarize(scenario, reps, seed=seed, warnings=warnings)
        if robust:
            summary = with_robustness(
                summary, scenario, n=n, seed=seed, executor=executor, backend=backend
            )
        run_dir, run_id = outputs.make_run_dir(scenario.name, out_dir, started_at)
        paths = outputs.write_run(
            run_dir,
            scenario,
            reps,
            summary,
            started_at=started_at,
            run_id=run_id,
            warehouse=used_db,
            requests=requests,
        )
        recorded = False
        if record:
            outputs.record_run(warehouse, run_id, scenario, reps, summary, started_at=started_at)
            recorded = True
    finally:
        if owned is not None and hasattr(owned, "close"):
            owned.close()
    return RunOutput(run_id, run_dir, summary, paths, recorded, used_db)
