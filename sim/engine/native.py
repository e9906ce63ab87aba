"""Which build of the engine's hot modules runs: the compiled one, or the Python source itself.

setup.py compiles replica.py and steptime.py with Cython (typed by replica.pxd and steptime.pxd) as
`sim.engine._replica_native` and `sim.engine._steptime_native`, where a C compiler is present at
install. It is the same source, so it gives the same results (tests/engine/test_native.py
compares both request by request); it is about 3.5x faster (docs/engine.md, "The compiled
replica"). A build is used only when it was made from the very source files installed beside it:
an editable install whose replica.py changed since the build warns and runs the Python source
until it is rebuilt (`pip install -e .`). INFERCOST_NATIVE=0 runs the Python source.

Fleets read `impl()` and `step_times()` when they build replicas; `use("python")` switches both
for a block (tests). The helpers the fleets schedule with (`Due`, `schedule_at`, `schedule_from`,
`land_at`) come from the build chosen at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import warnings
from importlib import resources
from types import ModuleType

from sim.engine import replica as python_replica
from sim.engine import steptime as python_steptime

# module -> the files its compiled build is made from (setup.py reads the same table)
NATIVE = {"replica": ("replica.py", "replica.pxd"), "steptime": ("steptime.py", "steptime.pxd")}


def source_sha(name: str) -> str:
    """sha256 over the module's source files in order, as setup.py stamps its build with."""
    h = hashlib.sha256()
    for file in NATIVE[name]:
        h.update(resources.files("sim.engine").joinpath(file).read_bytes())
    return h.hexdigest()


def _load(name: str) -> tuple[ModuleType | None, str]:
    """The compiled build of module `name`, or None and why it is not used."""
    if os.environ.get("INFERCOST_NATIVE", "") == "0":
        return None, "INFERCOST_NATIVE=0"
    try:
        mod = importlib.import_module(f"sim.engine._{name}_native")
    except ImportError:
        return None, "not built (no C compiler or no Cython when the package was installed)"
    if getattr(mod, "SOURCE_SHA", None) != source_sha(name):
        warnings.warn(
            f"infercost: the compiled {name} was built from another {name}.py; running the "
            f"Python source (about a third of the speed) until it is rebuilt: pip install -e .",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, f"built from another {name}.py (rebuild: pip install -e .)"
    return mod, ""


compiled_replica, why_not_compiled = _load("replica")
compiled_steptime, _why_not_steptime = _load("steptime")
if compiled_replica is not None and compiled_steptime is None:
    why_not_compiled = f"steptime: {_why_not_steptime}"
    compiled_replica = None  # both or neither: a half-compiled engine is not what was tested
if compiled_replica is None:
    compiled_steptime = None

_build = "compiled" if compiled_replica is not None else "python"
_at_import = compiled_replica or python_replica  # the scheduling helpers' build
Due = _at_import.Due
schedule_at = _at_import.schedule_at
schedule_from = _at_import.schedule_from
land_at = _at_import.land_at
due_of = _at_import.due_of


def impl() -> ModuleType:
    """The replica module fleets are built with now."""
    return compiled_replica if _build == "compiled" else python_replica


def step_times(profile):
    """`profile`'s step times (steptime.StepTimes or ProfileStepTimes) from the build in use."""
    return (compiled_steptime if _build == "compiled" else python_steptime).step_times(profile)


def describe() -> str:
    """Which build runs, in one line."""
    if _build == "compiled":
        return "compiled (Cython build of sim/engine/replica.py and steptime.py)"
    if compiled_replica is not None:
        return "Python source (chosen by use())"
    return f"Python source ({why_not_compiled})"


@contextlib.contextmanager
def use(build: str):
    """Build fleets with `build` ("python" or "compiled") inside the block."""
    global _build
    if build not in ("python", "compiled"):
        raise ValueError(f"build must be 'python' or 'compiled', not {build!r}")
    if build == "compiled" and compiled_replica is None:
        raise RuntimeError(f"no compiled build: {why_not_compiled}")
    before, _build = _build, build
    try:
        yield
    finally:
        _build = before
