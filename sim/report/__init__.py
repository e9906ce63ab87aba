"""Reports of run directories: a self-contained HTML page with charts, plus PNGs.

matplotlib is imported only from here, never by the simulation core.
"""

from __future__ import annotations

from pathlib import Path


def write_report(run_dir: Path, *, db_path=None, warehouse=None) -> Path:
    """See `sim.report.html.write_report`; imported lazily so `import sim.report` stays cheap."""
    from sim.report.html import write_report as _write

    return _write(run_dir, db_path=db_path, warehouse=warehouse)
