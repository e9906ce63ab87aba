"""Imported by the CLI before anything loads NumPy (sim/cli/__init__.py).

The simulator calls no BLAS routine, but NumPy's OpenBLAS starts a worker thread per core at
import, and that thread took about 1% of a core in each simulating process here (perf, Dec 2
2026): CPU that the fleets and replications running one process per core need. The CLI and the
worker processes it starts (they inherit the environment) use one BLAS thread; a setting already
in the environment wins. Library users who import `sim` themselves are not affected.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
