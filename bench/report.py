"""Benchmark: time to write the HTML report (charts as SVG + PNG) for a run of the size the issue
names (20 replications, 3 fleets, 60 windows), on a synthetic run directory.

Run: .venv/bin/python bench/report.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

t_import = time.perf_counter()
from sim.report.html import write_report  # noqa: E402  (timed: matplotlib comes in here)
from sim.report.synthetic import write_synthetic_run  # noqa: E402

t_import = time.perf_counter() - t_import


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = write_synthetic_run(Path(tmp) / "run", replications=20, windows=60, seed=0)
        absent = Path(tmp) / "no-warehouse.duckdb"  # time the report itself, not a warehouse read
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            page = write_report(run, warehouse=absent)
            timings.append(time.perf_counter() - start)
        size_kb = page.stat().st_size / 1024
        pngs = sorted(p.name for p in (run / "charts").glob("*.png"))
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(f"import sim.report.html (matplotlib, polars): {t_import:.2f} s")
    print(
        f"write_report (20 reps x 3 fleets x 60 windows): first {timings[0]:.2f} s, best of 3 {min(timings):.2f} s"
    )
    print(f"report.html: {size_kb:.0f} KiB, charts: {', '.join(pngs)}")


if __name__ == "__main__":
    main()
