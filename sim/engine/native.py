"""Which build of the replica runs: the compiled one, or replica.py itself.

setup.py compiles replica.py with Cython (typed by replica.pxd) as `sim.engine._replica_native`,
where a C compiler is present at install. It is the same source, so it gives the same results
(tests/engine/test_native.py compares both request by request); it is 1.5-2x faster
(docs/engine.md, "The compiled replica"). It is used only when it was built from the replica.py
and replica.pxd installed beside it: an editable install whose replica.py changed since the build
warns and runs replica.py until it is rebuilt (`pip install -e .`). INFERCOST_NATIVE=0 runs
replica.py.

`impl()` is read when a fleet is built; `use(module)` swaps it (tests). The helpers the fleets
schedule with (`Due`, `land_at`, `schedule_at`) come from the build chosen at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from importlib import resources
from types import ModuleType

from sim.engine import replica as python_replica

SOURCES = ("replica.py", "replica.pxd")  # what the compiled build is made from (setup.py)


def source_sha() -> str:
    """sha256 over replica.py then replica.pxd, as setup.py stamps the build with."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(resources.files("sim.engine").joinpath(name).read_bytes())
    return h.hexdigest()


def _load() -> tuple[ModuleType | None, str]:
    """The compiled module, or None and why it is not used."""
    if os.environ.get("INFERCOST_NATIVE", "") == "0":
        return None, "INFERCOST_NATIVE=0"
    try:
        from sim.engine import _replica_native as mod
    except ImportError:
        return None, "not built (no C compiler or no Cython when the package was installed)"
    if getattr(mod, "SOURCE_SHA", None) != source_sha():
        warnings.warn(
            "infercost: the compiled replica was built from another replica.py; running "
            "replica.py (about half the speed) until it is rebuilt: pip install -e .",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, "built from another replica.py (rebuild: pip install -e .)"
    return mod, ""


compiled_replica, why_not_compiled = _load()
_impl: ModuleType = compiled_replica or python_replica

Due = _impl.Due
land_at = _impl.land_at
schedule_at = _impl.schedule_at


def impl() -> ModuleType:
    """The replica module fleets are built with now."""
    return _impl


def describe() -> str:
    """One line for logs and `--version`-like output: which replica build runs."""
    if _impl is compiled_replica:
        return "compiled (Cython build of sim/engine/replica.py)"
    if _impl is python_replica and compiled_replica is not None:
        return "replica.py (chosen by use())"
    return f"replica.py ({why_not_compiled})"


@contextlib.contextmanager
def use(module: ModuleType):
    """Build fleets with `module` (python_replica or compiled_replica) inside the block."""
    global _impl
    before, _impl = _impl, module
    try:
        yield module
    finally:
        _impl = before
