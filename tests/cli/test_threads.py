"""The CLI asks for one OpenBLAS thread before NumPy loads (sim/cli/_threads.py), unless the
environment already says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sim.cli, numpy, os, sys; "
    "assert 'numpy' in sys.modules; print(os.environ['OPENBLAS_NUM_THREADS'])"
)


@pytest.mark.parametrize(("given", "want"), [(None, "1"), ("3", "3")])
def test_one_blas_thread_unless_told_otherwise(given, want):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == want
