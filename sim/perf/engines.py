"""Engine profiles: the step-time model's constants for one serving engine and version, shipped as
TOML files in sim/perf/data/profiles/ (or written by `sim calibrate --fit`), each saying which
measurements it was fitted on and its held-out error."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import cache
from pathlib import Path

from sim.errors import InputError
from sim.perf.catalog import _read_toml
from sim.perf.profile import Calibration

KV_ADMISSION = ("evict", "no_evict")
PROFILE_DIR = Path(__file__).parent / "data" / "profiles"
_CONSTANTS = {f.name for f in fields(Calibration) if f.name != "name"}


def list_engine_profiles() -> list[str]:
    """Names of the shipped engine profiles."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _resolve(name_or_path: str) -> Path:
    key = str(name_or_path).strip()
    shipped = PROFILE_DIR / f"{key.lower()}.toml"
    if "/" not in key and not key.endswith(".toml") and shipped.exists():
        return shipped
    path = Path(key)
    if key.endswith(".toml") and path.exists():
        return path
    raise InputError(
        "engine.profile",
        key,
        f"unknown engine profile; shipped: {', '.join(list_engine_profiles())}, or a .toml path",
    )


@cache
def _read(path: Path) -> dict:
    return _read_toml(path)


def reload_profiles() -> None:
    """Forget cached profile files (after one was rewritten)."""
    _read.cache_clear()


def profile_document(name_or_path: str) -> dict:
    """The whole profile file as a dict: [profile] (engine, version, fitted_on, held_out, ...)
    and [constants]."""
    return _read(_resolve(name_or_path))


def load_engine_profile(name_or_path: str) -> Calibration:
    """The Calibration a profile names. Unknown constants are refused, naming file and key."""
    path = _resolve(name_or_path)
    doc = _read(path)
    consts = doc.get("constants")
    if not isinstance(consts, dict):
        raise InputError(str(path), "constants", "missing [constants] table")
    for key, value in consts.items():
        if key not in _CONSTANTS:
            raise InputError(str(path), f"constants.{key}", "unknown profile constant")
        default = getattr(Calibration, key)
        if isinstance(value, bool) != isinstance(default, bool) or isinstance(
            value, str
        ) != isinstance(default, str):
            raise InputError(str(path), f"constants.{key}", "wrong type")
    if consts.get("kv_admission", "evict") not in KV_ADMISSION:
        raise InputError(
            str(path), "constants.kv_admission", f"must be one of {', '.join(KV_ADMISSION)}"
        )
    name = str(doc.get("profile", {}).get("name", path.stem))
    try:
        return replace(Calibration(), name=name, **consts)
    except TypeError as exc:
        raise InputError(str(path), "constants", str(exc)) from None


def profile_error_band(name_or_path: str) -> tuple[float, float]:
    """(lo, hi) factors on step time that bracket the profile's held-out error: the simulated
    step times would have to be multiplied by lo..hi to cover the spread of held-out
    measurements. (1.0, 1.0) when the profile has no held-out measurement."""
    held = profile_document(name_or_path).get("profile", {}).get("error_band")
    if not held:
        return (1.0, 1.0)
    lo, hi = float(held[0]), float(held[1])
    return (min(lo, 1.0), max(hi, 1.0))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def profile_toml(meta: dict, constants: Calibration) -> str:
    """A profile file's text: a [profile] table from `meta` and every constant of `constants`."""
    lines = ["[profile]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in meta.items()]
    lines += ["", "[constants]"]
    for f in fields(Calibration):
        if f.name != "name":
            lines.append(f"{f.name} = {_toml_value(getattr(constants, f.name))}")
    return "\n".join(lines) + "\n"
