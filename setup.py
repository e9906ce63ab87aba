"""Build: pyproject.toml describes the package; this file adds its one optional compiled module.

Cython compiles sim/engine/replica.py, typed by sim/engine/replica.pxd, as
`sim.engine._replica_native` (docs/engine.md, "The compiled replica"). The module is stamped with
the sha256 of the two files so that `sim.engine.native` uses it only with the source it was built
from. The extension is optional: where no C compiler is present pip still installs the package,
and the engine runs replica.py (the same results, about half the speed).
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
ENGINE = ROOT / "sim" / "engine"
SOURCES = ("replica.py", "replica.pxd")  # sim.engine.native.SOURCES


def source_sha() -> str:
    """sha256 over replica.py then replica.pxd (sim.engine.native.source_sha)."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((ENGINE / name).read_bytes())
    return h.hexdigest()


def native_extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:  # an sdist built without the build requirements: pure Python
        return []
    # Cython names a module after its file, and reads the .pxd beside it: compile a stamped copy
    # of replica.py under the module's own name.
    out = ROOT / "build" / "native" / "sim" / "engine"
    out.mkdir(parents=True, exist_ok=True)
    for package in (out.parent, out):
        (package / "__init__.py").write_text("")
    source = (ENGINE / "replica.py").read_text()
    stamp = f'\n\nSOURCE_SHA = "{source_sha()}"  # written by setup.py\n'
    (out / "_replica_native.py").write_text(source + stamp)
    (out / "_replica_native.pxd").write_text((ENGINE / "replica.pxd").read_text())
    ext = Extension(
        "sim.engine._replica_native",
        [str((out / "_replica_native.py").relative_to(ROOT))],
        # No fused multiply-add (the default on aarch64): a * b + c rounds as in Python.
        extra_compile_args=["-O2", "-ffp-contract=off"],
        optional=True,
    )
    return cythonize(
        [ext],
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )


if __name__ == "__main__":
    setup(ext_modules=native_extensions())
