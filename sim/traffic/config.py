"""Build a Workload from a scenario's `[workload]` table (schema in docs/workload.md).

A table names either a recorded `trace` or a synthetic `generator`, then optional transforms
applied in a fixed order: window_s, rate_scale, time_stretch, tile_to_s, sample_frac, max_requests.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.traffic import synthetic, transforms
from sim.traffic.lengths import IndependentLengths, LognormalLengths, ResampleLengths
from sim.traffic.loaders import FORMATS, load_trace, resolve_trace_path
from sim.workload import Workload

GENERATORS = ("poisson", "gamma", "diurnal", "mmpp")
_TRACE_KEYS = {"trace", "format", "model_filter", "columns"}
_GENERATOR_KEYS = {
    "poisson": {"rate_per_s", "duration_s"},
    "gamma": {"rate_per_s", "duration_s", "cv"},
    "diurnal": {"rate_per_s", "duration_s", "peak_to_trough", "peak_hour", "period_s"},
    "mmpp": {"rates_per_s", "dwell_s", "duration_s"},
}
_LENGTH_KEYS = {"prompt_tokens", "output_tokens", "lengths_from"}
_TRANSFORM_KEYS = {
    "window_s",
    "rate_scale",
    "time_stretch",
    "tile_to_s",
    "sample_frac",
    "max_requests",
}
_TILE_KEYS = {"peak_to_trough", "peak_hour"}
_ALL_KEYS = (
    _TRACE_KEYS | {"generator"} | set().union(*_GENERATOR_KEYS.values()) | _LENGTH_KEYS
    | _TRANSFORM_KEYS
)  # fmt: skip


class _Table:
    """Typed reads from the [workload] table, failing with the key's name."""

    def __init__(self, cfg: dict, source: str, prefix: str = "workload"):
        self.cfg = cfg
        self.source = source
        self.prefix = prefix

    def error(self, key: str, reason: str) -> InputError:
        return InputError(self.source, f"{self.prefix}.{key}", reason)

    def has(self, key: str) -> bool:
        return key in self.cfg

    def number(self, key: str, *, default=None, minimum: float | None = 0.0, strict=True) -> float:
        if key not in self.cfg:
            if default is None:
                raise self.error(key, "required")
            return float(default)
        value = self.cfg[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(key, f"must be a number, got {value!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            relation = ">" if strict else ">="
            raise self.error(key, f"must be {relation} {minimum:g}, got {value!r}")
        return float(value)

    def string(self, key: str) -> str:
        value = self.cfg[key]
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def numbers(self, key: str, *, length: int | None = None) -> list[float]:
        value = self.cfg.get(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"must be a non-empty list of numbers, got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            raise self.error(key, f"must be a list of numbers, got {value!r}")
        if length is not None and len(value) != length:
            raise self.error(key, f"must have {length} entries, got {len(value)}")
        return [float(v) for v in value]


def _check_keys(t: _Table) -> None:
    cfg = t.cfg
    unknown = sorted(set(cfg) - _ALL_KEYS)
    if unknown:
        raise t.error(unknown[0], f"unknown key; allowed: {', '.join(sorted(_ALL_KEYS))}")
    if ("trace" in cfg) == ("generator" in cfg):
        raise InputError(t.source, "workload", "give exactly one of `trace` or `generator`")
    used = set(_TRANSFORM_KEYS)
    if "tile_to_s" in cfg:
        used |= _TILE_KEYS
    if "trace" in cfg:
        used |= _TRACE_KEYS
        what = "a `trace`"
    else:
        generator = cfg["generator"]
        if generator not in GENERATORS:
            raise t.error("generator", f"{generator!r} is not one of {', '.join(GENERATORS)}")
        used |= {"generator"} | _GENERATOR_KEYS[generator] | _LENGTH_KEYS
        what = f"generator {generator!r}"
    for key in sorted(set(cfg) - used):
        raise t.error(key, f"does not apply to {what}")


def _length_dist(t: _Table, key: str) -> LognormalLengths:
    spec = t.cfg.get(key)
    if not isinstance(spec, dict):
        raise t.error(key, f"must be a table like {{ dist = 'lognormal', median = 1020, sigma = 0.8, max = 8192 }}, got {spec!r}")  # fmt: skip
    dist = spec.get("dist", "lognormal")
    sub = _Table(spec, t.source, prefix=f"{t.prefix}.{key}")
    if dist == "lognormal":
        unknown = set(spec) - {"dist", "median", "sigma", "max"}
        if unknown:
            raise t.error(
                f"{key}.{sorted(unknown)[0]}", "unknown key; allowed: dist, median, sigma, max"
            )
        median = sub.number("median", minimum=1.0, strict=False)
        sigma = sub.number("sigma", minimum=0.0, strict=False)
        max_tokens = sub.number("max", default=1_000_000, minimum=1.0, strict=False)
        if max_tokens < median:
            raise t.error(f"{key}.max", f"must be >= median ({median:g}), got {max_tokens:g}")
        return LognormalLengths(median, sigma, int(max_tokens))
    if dist == "fixed":
        unknown = set(spec) - {"dist", "value"}
        if unknown:
            raise t.error(f"{key}.{sorted(unknown)[0]}", "unknown key; allowed: dist, value")
        value = sub.number("value", minimum=1.0, strict=False)
        return LognormalLengths(int(value), 0.0, int(value))
    raise t.error(f"{key}.dist", f"{dist!r} is not one of lognormal, fixed")


def _lengths(t: _Table, base_dir: Path):
    if t.has("lengths_from"):
        for key in ("prompt_tokens", "output_tokens"):
            if t.has(key):
                raise t.error(key, "give either lengths_from or prompt_tokens/output_tokens")
        spec = t.string("lengths_from")
        path = _resolve(t, "lengths_from", spec, base_dir)
        trace = load_trace(path)
        return ResampleLengths(trace.prompt_tokens, trace.output_tokens, source=path.name)
    for key in ("prompt_tokens", "output_tokens"):
        if not t.has(key):
            raise t.error(
                key, 'required for a generator (or set lengths_from = "builtin:azure2023_conv")'
            )
    return IndependentLengths(_length_dist(t, "prompt_tokens"), _length_dist(t, "output_tokens"))


def _resolve(t: _Table, key: str, spec: str, base_dir: Path) -> Path:
    try:
        return resolve_trace_path(spec, base_dir)
    except InputError as exc:
        raise t.error(key, f"{exc.reason}: {exc.source}") from None


def _from_trace(t: _Table, base_dir: Path) -> Workload:
    path = _resolve(t, "trace", t.string("trace"), base_dir)
    fmt = t.string("format") if t.has("format") else "auto"
    if fmt not in (*FORMATS, "auto"):
        raise t.error("format", f"{fmt!r} is not one of auto, {', '.join(FORMATS)}")
    columns = t.cfg.get("columns")
    if columns is not None and not isinstance(columns, dict):
        raise t.error("columns", f"must be a table of column names, got {columns!r}")
    model = t.string("model_filter") if t.has("model_filter") else None
    # Errors inside the file name the file and line; they are more useful than the key.
    return load_trace(path, format=fmt, model=model, mapping=columns)


def _generate(t: _Table, base_dir: Path, rng: np.random.Generator) -> Workload:
    generator = t.cfg["generator"]
    lengths = _lengths(t, base_dir)
    duration_s = t.number("duration_s")
    if generator == "poisson":
        return synthetic.poisson(t.number("rate_per_s"), duration_s, lengths, rng)
    if generator == "gamma":
        return synthetic.gamma_arrivals(
            t.number("rate_per_s"), t.number("cv"), duration_s, lengths, rng
        )
    if generator == "diurnal":
        return synthetic.diurnal(
            t.number("rate_per_s"),
            duration_s,
            lengths,
            rng,
            peak_to_trough=t.number("peak_to_trough", default=3.0, minimum=1.0, strict=False),
            period_s=t.number("period_s", default=86400.0),
            peak_hour=t.number("peak_hour", default=14.0, minimum=None),
        )
    rates = t.numbers("rates_per_s")
    if any(r < 0 for r in rates):
        raise t.error("rates_per_s", f"rates must be >= 0, got {rates}")
    dwells = t.numbers("dwell_s", length=len(rates))
    if any(d <= 0 for d in dwells):
        raise t.error("dwell_s", f"dwell times must be > 0, got {dwells}")
    return synthetic.mmpp(rates, dwells, duration_s, lengths, rng)


def _transform(t: _Table, w: Workload, rng: np.random.Generator) -> Workload:
    if t.has("window_s"):
        bounds = t.numbers("window_s", length=2)
        if not 0 <= bounds[0] < bounds[1]:
            raise t.error("window_s", f"must be [start, end] with 0 <= start < end, got {bounds}")
        w = transforms.window(w, *bounds)
    if t.has("rate_scale"):
        w = transforms.scale_rate(w, t.number("rate_scale"), rng)
    if t.has("time_stretch"):
        w = transforms.stretch(w, t.number("time_stretch"))
    if t.has("tile_to_s"):
        w = transforms.tile_diurnal(
            w,
            t.number("tile_to_s"),
            rng,
            peak_to_trough=t.number("peak_to_trough", default=3.0, minimum=1.0, strict=False),
            peak_hour=t.number("peak_hour", default=14.0, minimum=None),
        )
    if t.has("sample_frac"):
        frac = t.number("sample_frac")
        if frac > 1:
            raise t.error("sample_frac", f"must be in (0, 1], got {frac:g}")
        w = transforms.sample(w, frac, rng)
    if t.has("max_requests"):
        value = t.cfg["max_requests"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise t.error("max_requests", f"must be a positive integer, got {value!r}")
        w = transforms.truncate(w, value)
    return w


def build_workload(cfg: dict, *, base_dir: Path, rng: np.random.Generator, source: str) -> Workload:
    """The Workload a scenario's [workload] table describes; bad keys raise InputError(source)."""
    if not isinstance(cfg, dict):
        raise InputError(source, "workload", "must be a table")
    t = _Table(cfg, source)
    _check_keys(t)
    try:
        w = _from_trace(t, Path(base_dir)) if t.has("trace") else _generate(t, Path(base_dir), rng)
        w = _transform(t, w, rng)
    except ValueError as exc:  # limits the keys cannot see alone, e.g. a tile too large
        raise InputError(source, "workload", str(exc)) from None
    if len(w) == 0:
        raise InputError(source, "workload", "no requests left (check window_s, rates, durations)")
    return w
