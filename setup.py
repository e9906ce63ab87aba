"""Build: pyproject.toml describes the package; this file adds its optional compiled modules.

Cython compiles sim/engine/replica.py and steptime.py, typed by the .pxd beside each, as
`sim.engine._replica_native` and `sim.engine._steptime_native` (docs/engine.md, "The compiled
replica"). Each is stamped with the sha256 of its source files so that `sim.engine.native` uses it
only with the source it was built from. The extensions are optional: where no C compiler is
present pip still installs the package, and the engine runs the Python source (the same results,
about a third of the speed).
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
ENGINE = ROOT / "sim" / "engine"
# module -> its source files (sim.engine.native.NATIVE)
NATIVE = {"replica": ("replica.py", "replica.pxd"), "steptime": ("steptime.py", "steptime.pxd")}


def source_sha(name: str) -> str:
    """sha256 over the module's source files in order (sim.engine.native.source_sha)."""
    h = hashlib.sha256()
    for file in NATIVE[name]:
        h.update((ENGINE / file).read_bytes())
    return h.hexdigest()


def native_extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:  # an sdist built without the build requirements: pure Python
        return []
    # Cython names a module after its file, and reads the .pxd beside it: compile a stamped copy
    # of each source under its module's own name.
    out = ROOT / "build" / "native" / "sim" / "engine"
    out.mkdir(parents=True, exist_ok=True)
    for package in (out.parent, out):
        (package / "__init__.py").write_text("")
    exts = []
    for name, (py, pxd) in NATIVE.items():
        module = f"_{name}_native"
        stamp = f'\n\nSOURCE_SHA = "{source_sha(name)}"  # written by setup.py\n'
        (out / f"{module}.py").write_text((ENGINE / py).read_text() + stamp)
        (out / f"{module}.pxd").write_text((ENGINE / pxd).read_text())
        exts.append(
            Extension(
                f"sim.engine.{module}",
                [str((out / f"{module}.py").relative_to(ROOT))],
                # No fused multiply-add (the default on aarch64): a * b + c rounds as in Python.
                extra_compile_args=["-O2", "-ffp-contract=off"],
            )
        )
    built = cythonize(
        exts,
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )
    for ext in built:  # cythonize returns new Extension objects without `optional`
        ext.optional = True
    return built


if __name__ == "__main__":
    setup(ext_modules=native_extensions())
