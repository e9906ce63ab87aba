"""Scenario files: read a TOML scenario, apply `--set` overrides and validate it against the one
schema (sim/scenario/schema.py), so a typo fails with file, line, field and reason before any
price lookup or simulation. `Scenario` is the typed result every later stage reads.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import os
import re
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.advise.constraints import AdviseConstraints
from sim.engine.config import FLEET_CLASSES, ApiFleetConfig, FleetConfig, serving_groups
from sim.errors import InputError
from sim.scenario.schema import (
    SCENARIO_ADAPTER,
    SLO_KEYS,
    ModelSpec,
    ScenarioFile,
)
from sim.summary.records import Slo
from sim.traffic.spec import WorkloadSpec

MAX_SCENARIO_BYTES = 1 << 20  # a scenario is a page of TOML; 1 MiB is far beyond any real one
MAX_QUOTE = 200  # characters of a bad value quoted in an error


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. `prices` is empty until sim.pricing.resolve_prices fills it."""

    path: Path
    name: str
    seed: int
    replications: int
    price_as_of: str  # "latest" or an ISO date
    window_s: float
    horizon_s: float | None
    description: str
    workload: WorkloadSpec
    model: ModelSpec
    slo: Slo
    fleets: tuple[FleetConfig, ...]
    raw: dict[str, Any]  # the TOML after overrides, as written to scenario.resolved.json
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # provenance per fleet name
    price_max_age_days: float = 30.0
    price_source_priority: tuple[str, ...] | None = None
    advise: AdviseConstraints = field(default_factory=AdviseConstraints)
    engine_path: str = "auto"  # "exact", "streaming" (bounded memory) or "auto" (docs/scale.md)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def varied(self, overrides: typing.Sequence[str]) -> Scenario:
        """A typed copy with `--set`-style changes, validated again; the file is not re-read."""
        if not overrides:
            return self
        raw = copy.deepcopy(self.raw)
        for item in overrides:
            apply_override(raw, item)
        names = _overridden_keys(overrides)
        varied = parse_scenario(raw, self.path, overridden=names)
        return dataclasses.replace(varied, prices={})


def _overridden_keys(overrides: typing.Iterable[str]) -> set[str]:
    """Key names `--set` replaced: an error on one cites no file line (the file's is stale)."""
    return {item.partition("=")[0].strip().rsplit(".", 1)[-1] for item in overrides}


def read_scenario_text(path: Path) -> str:
    """The file's text: a regular, size-capped, UTF-8 file, else one clear InputError."""
    source = str(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(source, None, f"cannot read scenario: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(source, None, "not a regular file (a scenario is a TOML file)")
    if st.st_size > MAX_SCENARIO_BYTES:
        raise InputError(source, None, f"{st.st_size:,} bytes; a scenario is at most {MAX_SCENARIO_BYTES:,}")  # fmt: skip
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(source, None, f"cannot read scenario: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, None, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None  # fmt: skip


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, None, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise InputError(source, None, "invalid TOML: tables or arrays nested too deep") from None


def load_scenario(
    path: Path | str,
    overrides: typing.Sequence[str] = (),
    *,
    check_fit: bool = True,
    require_fleets: bool = True,
) -> Scenario:
    """Read, override and validate a scenario file; raise InputError naming file and field."""
    path = Path(path)
    text = read_scenario_text(path)
    raw = parse_toml(text, str(path))
    for item in overrides:
        apply_override(raw, item)
    overridden = _overridden_keys(overrides)
    scenario = parse_scenario(raw, path, text, overridden=overridden)
    if require_fleets and not scenario.fleets:
        raise InputError(str(path), "fleet", "at least one [[fleet]] table is required")
    if check_fit:
        check_models_fit(scenario)
    return scenario


# ---------------------------------------------------------------------------------------------
# --set overrides


def parse_value(text: str) -> Any:
    """A `--set` value as a TOML literal (2, 2.5, true, "x", [1, 2], {a = 1}); else the raw text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise InputError("--set", None, "value nested too deep") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set `a.b.c=value` in the parsed TOML. `fleet.N` is the 0-based fleet index or its name."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError("--set", item, "expected KEY=VALUE, e.g. workload.rate_scale=2")
    parts = key.split(".")
    if any(not p for p in parts):
        raise InputError("--set", key, "empty path segment")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = _pick_list_item(node, part, here)
            continue
        if part not in node:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict | list):
            raise InputError("--set", key, f"{here} is a value, not a table")
    last = parts[-1]
    if isinstance(node, list):
        raise InputError("--set", key, f"{key} names a whole table; set one of its keys")
    if not isinstance(node, dict):
        raise InputError("--set", key, f"{'.'.join(parts[:-1])} is a value, not a table")
    node[last] = parse_value(value.strip())


def _pick_list_item(items: list, part: str, here: str) -> dict:
    if re.fullmatch(r"\d+", part):
        idx = int(part)
        if idx >= len(items):
            raise InputError(
                "--set", here, f"index {idx} out of range (0..{len(items) - 1}, 0-based)"
            )
        if not isinstance(items[idx], dict):
            raise InputError("--set", here, f"entry {idx} is a value, not a table")
        return items[idx]
    names = [it.get("name") for it in items if isinstance(it, dict)]
    for it in items:
        if isinstance(it, dict) and it.get("name") == part:
            return it
    hint = _suggest(part, [n for n in names if isinstance(n, str)])
    raise InputError(
        "--set", here, f"no entry named {part!r} (use a 0-based index or one of {names}){hint}"
    )


# ---------------------------------------------------------------------------------------------
# validation


def _suggest(key: str, options: typing.Iterable[str]) -> str:
    """` (did you mean X?)` for the closest option, comparing words in any order too
    (`replicas_max` -> `max_replicas`)."""

    def words(text: str) -> str:
        return "_".join(sorted(text.split("_")))

    def score(option: str) -> float:
        plain = difflib.SequenceMatcher(None, key, option).ratio()
        return max(plain, difflib.SequenceMatcher(None, words(key), words(option)).ratio())

    scored = sorted(((score(o), o) for o in options), key=lambda p: (-p[0], p[1]))
    return f" (did you mean {scored[0][1]}?)" if scored and scored[0][0] >= 0.6 else ""


def _line_of(text: str, key: str) -> int | None:
    """Line of `key = ...` in the file when it occurs exactly once (None for --set keys)."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    hits = [m.start() for m in pattern.finditer(text)]
    if len(hits) != 1:
        return None
    return text.count("\n", 0, hits[0]) + 1


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "...(cut)"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {_quote(value)}"


def _unwrap(hint: Any) -> Any:
    """The dataclass (or list type) behind Annotated[...] and Optional[...] wrappers."""
    for _ in range(10):  # wrappers nest a few levels at most
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            hint = typing.get_args(hint)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            tables = [a for a in options if dataclasses.is_dataclass(_unwrap(a))]
            if len(tables) != 1 and len(options) != 1:
                return hint
            hint = tables[0] if len(tables) == 1 else options[0]
        else:
            return hint
    return hint


def _walk(loc: tuple, raw: Any) -> tuple[str, type | None]:
    """Turn a pydantic error location into `fleet[1].engine.max_batch_seqs` and find the schema
    class that holds the last key (for "did you mean")."""
    path = ""
    cls: Any = ScenarioFile
    node = raw
    parts = list(loc)
    holder: Any = None
    while parts:
        part = parts.pop(0)
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            cls = _unwrap(typing.get_args(_unwrap(cls))[0]) if typing.get_origin(_unwrap(cls)) is list else cls  # fmt: skip
            continue
        if part in FLEET_CLASSES and not (isinstance(node, dict) and part in node):
            cls = FLEET_CLASSES[part]  # the discriminated union's tag, not a key
            continue
        holder = cls if dataclasses.is_dataclass(cls) else None
        shown = str(part) if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", str(part)) else _quote(part)[:66]
        path = f"{path}.{shown}" if path else shown
        if holder is not None:
            hints = typing.get_type_hints(holder, include_extras=True)
            cls = _unwrap(hints.get(part, Any))
        node = node.get(part) if isinstance(node, dict) else None
    return path, holder


def _message(err: dict[str, Any], holder: Any, key: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = [f.name for f in dataclasses.fields(holder)] if holder is not None else []
        return f"unknown key{_suggest(key, allowed)}"
    if kind in ("missing", "missing_argument"):
        return "required key is missing"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}  # fmt: skip
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit:g}, got {_quote(value)}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(options)}; got {_quote(value)}{_suggest(str(value), options)}"  # fmt: skip
    if kind in ("float_type", "int_type", "int_from_float"):
        what = "an integer" if kind.startswith("int") else "a number"
        return f"expected {what}, got {_describe(value)}"
    if kind == "string_type":
        return f"expected a string, got {_describe(value)}"
    if kind == "bool_type":
        return f"expected true or false, got {_describe(value)}"
    if kind == "finite_number":
        return "must be finite"
    if kind in ("dataclass_type", "dataclass_exact_type", "dict_type", "model_type"):
        return f"expected a table, got {_describe(value)}"
    if kind == "list_type":
        return f"expected an array, got {_describe(value)}"
    if kind == "string_pattern_mismatch":
        return f"use letters, digits, '-', '_' or '.' only, 1-64 characters, starting with a letter or digit; got {_quote(value)}"  # fmt: skip
    if kind in ("too_short", "too_long"):
        return err["msg"].replace("List", "array").replace("Value", "text")
    if kind == "union_tag_invalid":
        kinds = list(FLEET_CLASSES)
        return f"must be one of {', '.join(kinds)}; got {_quote(ctx.get('tag'))}{_suggest(str(ctx.get('tag')), kinds)}"  # fmt: skip
    if kind == "union_tag_not_found":
        return f"required key is missing (one of {', '.join(FLEET_CLASSES)})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _input_error(exc: ValidationError, raw: dict, source: str, text: str, overridden) -> InputError:
    errors = exc.errors(include_url=False)
    # An unknown key (a typo) usually causes the other errors (a key missing where it was meant
    # to be): report it first.
    unknown = [e for e in errors if e["type"] in ("extra_forbidden", "unexpected_keyword_argument")]
    err = (unknown or errors)[0]
    loc = tuple(err["loc"])
    path, holder = _walk(loc, raw)
    if err["type"] == "union_tag_not_found":
        path = f"{path}.kind"
    elif err["type"] == "union_tag_invalid":
        path = f"{path}.kind"
    reason = _message(err, holder, path.rsplit(".", 1)[-1].split("[", 1)[0])
    # Validators name the key they judge first ("tp: ..."): move it into the field path.
    m = re.match(r"^([a-z_][a-z0-9_]*): (.+)$", reason, re.DOTALL)
    if err["type"] == "value_error" and m:
        path = f"{path}.{m.group(1)}" if path else m.group(1)
        reason = m.group(2)
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    line = None if key in overridden else _line_of(text, key)
    return InputError(source, path or None, reason, line=line)


_ADAPTERS: dict[type, Any] = {}


def parse_table(cls: type, key: str, table: Any, source: str, text: str = "") -> Any:
    """Validate one top-level table of a scenario (`[workload]`, `[advise]`) alone, with the
    same one-line errors as a whole file (for `sim trace`, the advisor and tests)."""
    from pydantic import TypeAdapter

    adapter = _ADAPTERS.setdefault(cls, TypeAdapter(cls))
    try:
        return adapter.validate_python(table)
    except ValidationError as exc:
        wrapped = ValidationError.from_exception_data(
            exc.title,
            [{**e, "loc": (key, *e["loc"])} for e in exc.errors(include_url=False)],
        )
        raise _input_error(wrapped, {key: table}, source, text, frozenset()) from None


def parse_workload(table: Any, source: str, text: str = "") -> WorkloadSpec:
    """Validate a `[workload]` table alone (for `sim trace` and tests), with the same errors."""
    return parse_table(WorkloadSpec, "workload", table, source, text)


def parse_scenario(
    raw: dict[str, Any], path: Path, text: str = "", *, overridden: typing.Iterable[str] = ()
) -> Scenario:
    """Validate parsed TOML (after overrides) into a Scenario.

    `overridden`: key names set by `--set`; errors on them cite no line, as the file's line holds
    the value that was replaced.
    """
    source = str(path)
    overridden = frozenset(overridden)
    raw = _with_fleet_names(raw)
    try:
        spec = SCENARIO_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise _input_error(exc, raw, source, text, overridden) from None
    except RecursionError:
        raise InputError(source, None, "tables or arrays nested too deep") from None

    model = spec.model
    if model.config is not None:
        cfg_path = Path(model.config)
        if not cfg_path.is_absolute():
            cfg_path = path.parent / cfg_path
        if not cfg_path.is_file():
            raise InputError(source, "model.config", f"file not found: {cfg_path}")
        model = dataclasses.replace(model, config=str(cfg_path))
    seen: dict[str, int] = {}
    for i, f in enumerate(spec.fleet):
        if f.name in seen:
            line = None if "name" in overridden else _line_of(text, "name")
            raise InputError(
                source,
                f"fleet[{i}].name",
                f"duplicate fleet name {f.name!r} (also fleet[{seen[f.name]}])",
                line=line,  # fmt: skip
            )
        seen[f.name] = i
    slo_raw = raw.get("slo", {})
    targets = {k: getattr(spec.slo, k) for k in slo_raw if k in SLO_KEYS}
    head = spec.scenario
    return Scenario(
        path=path,
        name=head.name or _safe_stem(path),
        seed=head.seed,
        replications=head.replications,
        price_as_of=head.price_as_of,
        window_s=head.window_s,
        horizon_s=head.horizon_s,
        description=head.description,
        workload=spec.workload,
        model=model,
        slo=Slo(targets_s=targets, min_success_rate=spec.slo.min_success_rate),
        fleets=tuple(spec.fleet),
        raw=_jsonable(raw),
        price_max_age_days=head.price_max_age_days,
        price_source_priority=head.price_source_priority,
        engine_path=head.engine_path,
        advise=spec.advise,
    )


def _safe_stem(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip(".") or "scenario"
    return stem[:64]


def _with_fleet_names(raw: dict[str, Any]) -> dict[str, Any]:
    """Fleets without a name are called `KIND-INDEX`, as documented."""
    fleets = raw.get("fleet") if isinstance(raw, dict) else None
    if not isinstance(fleets, list):
        return raw
    named = []
    for i, table in enumerate(fleets):
        if isinstance(table, dict) and "name" not in table and isinstance(table.get("kind"), str):
            table = {**table, "name": f"{table['kind']}-{i}"}
        named.append(table)
    return {**raw, "fleet": named}


def check_models_fit(scenario: Scenario) -> None:
    """Fail on GPU fleets whose replica cannot hold the model's weights plus some KV cache."""
    gpu_fleets = [
        (i, f) for i, f in enumerate(scenario.fleets) if not isinstance(f, ApiFleetConfig)
    ]
    # The model is checked even when no fleet runs the physics model, so a typo never waits.
    factory = make_profile_factory(scenario.model, scenario.path)
    gpu_fleets = [
        (f"fleet[{i}]" + (f".{which}" if which else ""), g)
        for i, f in gpu_fleets
        for which, g in serving_groups(f)
        if g.engine.service == "physics"
    ]
    for where, f in gpu_fleets:
        profile = factory(
            f.gpu,
            f.tp,
            f.precision,
            f.engine.mem_util,
            field_prefix=where,
            engine_profile=f.engine.profile,
        )
        if not profile.fits:
            raise InputError(
                str(scenario.path),
                f"{where}.tp",
                f"{scenario.model.name} ({f.precision or scenario.model.precision}) does not fit on "
                f"{f.tp} x {f.gpu} with mem_util {f.engine.mem_util}; raise tp or use a larger GPU",
            )


def make_profile_factory(model_spec: ModelSpec, source: Path | str = "scenario"):
    """`profile_factory(gpu, tp, precision, mem_util)` for the engine, cached per argument tuple.

    sim.perf names its own argument in an InputError ("gpu", "tp", ...); it is re-raised naming
    the scenario file and the fleet field instead.
    """
    from sim.perf import build_profile, load_model

    try:
        model = load_model(model_spec.config or model_spec.name)
    except InputError as exc:
        field_name = "model.config" if model_spec.config else "model.name"
        raise InputError(str(source), field_name, exc.reason) from None
    cache: dict[tuple, Any] = {}

    def factory(
        gpu: str,
        tp: int,
        precision: str | None = None,
        mem_util: float = 0.9,
        *,
        field_prefix: str = "fleet",
        engine_profile: str | None = None,
    ):
        key = (gpu, tp, precision or model_spec.precision, mem_util, engine_profile)
        if key not in cache:
            try:
                cache[key] = build_profile(
                    model,
                    gpu,
                    tp=tp,
                    precision=key[2],
                    mem_util=mem_util,
                    kv_dtype=model_spec.kv_dtype,
                    engine_profile=engine_profile,
                )
            except InputError as exc:
                arg = exc.source if exc.source in ("gpu", "tp", "precision", "mem_util") else "gpu"
                if exc.source == "engine.profile":
                    arg = "engine.profile"
                where = (
                    f"{field_prefix}.engine.mem_util"
                    if arg == "mem_util"
                    else f"{field_prefix}.{arg}"
                )
                raise InputError(str(source), where, exc.reason) from None
        return cache[key]

    return factory


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value
