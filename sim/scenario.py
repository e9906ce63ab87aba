"""Scenario files: parse a TOML scenario, apply `--set` overrides and validate every key against
the fleet config dataclasses, so a typo fails with file, field and reason before any simulation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.engine.config import (
    FLEET_CLASSES,
    ApiFleetConfig,
    CloudFleetConfig,
    DistSpec,
    SelfHostedFleetConfig,
)
from sim.errors import InputError

FleetConfig = ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig

# Parameters each distribution needs (DistSpec docstring); the others must stay unset.
DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "const": ("value",),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
}

# Closed vocabularies of string fields, by field name (the same name means the same thing in
# every config class).
CHOICES: dict[str, tuple[str, ...]] = {
    "term": ("on_demand", "spot"),
    "policy": ("inflight", "queue", "rate"),
    "billing": ("per_second", "per_hour"),
    "router": ("round_robin", "least_outstanding", "jsq"),
    "service": ("physics", "exponential"),
    "precision": ("bf16", "fp16", "fp8", "int8", "int4"),
}

# Numeric fields that must be > 0 (all other numeric fields must be >= 0).
STRICTLY_POSITIVE = frozenset(
    {
        "tp",
        "max_replicas",
        "target",
        "decision_interval_s",
        "weight_load_gbps",
        "servers",
        "gpus_per_server",
        "gpus_per_instance",
        "lifetime_years",
        "max_batch_seqs",
        "max_batched_tokens",
        "mem_util",
        "service_mean_s",
        "backoff_base_s",
        "backoff_max_s",
        "rpm_limit",
        "tpm_limit",
        "pue",
        "window_s",
        "horizon_s",
        "replications",
    }
)
# Fractions in [0, 1].
FRACTIONS = frozenset({"residual_frac", "batch_discount", "mem_util", "min_success_rate"})

SLO_KEYS = tuple(
    f"{metric}_{q}_s" for metric in ("ttft", "e2e", "tpot") for q in ("p50", "p90", "p95", "p99")
)
DEFAULT_MIN_SUCCESS_RATE = 0.99


@dataclass(frozen=True)
class ModelSpec:
    """The served model: a name from the perf catalog (or a path to a config) and its precision."""

    name: str
    precision: str = "bf16"
    config: str | None = None  # path to a model config file, resolved against the scenario file


@dataclass(frozen=True)
class Slo:
    """Latency targets in seconds (None = no target) and the least acceptable success rate."""

    targets_s: dict[str, float] = field(default_factory=dict)  # e.g. {"ttft_p99_s": 2.0}
    min_success_rate: float = DEFAULT_MIN_SUCCESS_RATE


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
    workload: dict[str, Any]
    model: ModelSpec
    slo: Slo
    fleets: tuple[FleetConfig, ...]
    raw: dict[str, Any]  # the TOML after overrides, as written to scenario.resolved.json
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # provenance per fleet name

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_scenario(
    path: Path | str, overrides: typing.Sequence[str] = (), *, check_fit: bool = True
) -> Scenario:
    """Read, override and validate a scenario file; raise InputError naming file and field."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(source, None, f"cannot read scenario: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, None, f"invalid TOML: {exc}") from None
    for item in overrides:
        apply_override(raw, item)
    overridden = {item.partition("=")[0].strip().rsplit(".", 1)[-1] for item in overrides}
    scenario = parse_scenario(raw, path, text, overridden=overridden)
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
    node[last] = parse_value(value.strip())


def _pick_list_item(items: list, part: str, here: str) -> dict:
    if re.fullmatch(r"\d+", part):
        idx = int(part)
        if idx >= len(items):
            raise InputError(
                "--set", here, f"index {idx} out of range (0..{len(items) - 1}, 0-based)"
            )
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


class _Checker:
    """Carries the file name and text so every error can name the file, field and line."""

    def __init__(self, path: Path, text: str, overridden: typing.Iterable[str] = ()):
        self.source = str(path)
        self.text = text
        self.overridden = frozenset(overridden)

    def fail(self, field_path: str, reason: str) -> typing.NoReturn:
        key = field_path.rsplit(".", 1)[-1].split("[", 1)[0]
        line = None if key in self.overridden else _line_of(self.text, key)
        raise InputError(self.source, field_path, reason, line=line)

    def unknown_keys(self, table: dict, allowed: typing.Iterable[str], prefix: str) -> None:
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                where = f"{prefix}.{key}" if prefix else key
                self.fail(where, f"unknown key{_suggest(key, allowed)}")

    def number(self, value: Any, where: str, *, integer: bool = False) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "an integer" if integer else "a number"
            self.fail(where, f"expected {kind}, got {_describe(value)}")
        if integer and not isinstance(value, int):
            if float(value).is_integer():
                value = int(value)
            else:
                self.fail(where, f"expected an integer, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(where, "must be finite")
        name = where.rsplit(".", 1)[-1]
        if name in STRICTLY_POSITIVE and value <= 0:
            self.fail(where, f"must be > 0, got {value!r}")
        if value < 0:
            self.fail(where, f"must be >= 0, got {value!r}")
        if name in FRACTIONS and value > 1:
            self.fail(where, f"must be a fraction in [0, 1], got {value!r}")
        return value if integer else float(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {_describe(value)}")
        name = where.rsplit(".", 1)[-1]
        if name in CHOICES and value not in CHOICES[name]:
            self.fail(
                where,
                f"must be one of {', '.join(CHOICES[name])}; got {value!r}{_suggest(value, CHOICES[name])}",
            )
        return value

    def table(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected a table, got {_describe(value)}")
        return value

    # -- dataclass-driven conversion --

    def build(self, cls: type, table: dict, where: str, **fixed: Any) -> Any:
        """Instantiate config dataclass `cls` from a TOML table, checking every key by its type."""
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        self.unknown_keys(table, fields, where)
        kwargs: dict[str, Any] = dict(fixed)
        for key, value in table.items():
            if key in fixed:
                continue
            kwargs[key] = self.convert(hints[key], value, f"{where}.{key}" if where else key)
        missing = [
            name
            for name, f in fields.items()
            if name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            self.fail(f"{where}.{missing[0]}", "required key is missing")
        return cls(**kwargs)

    def convert(self, hint: Any, value: Any, where: str) -> Any:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(options) == 1:
                return self.convert(options[0], value, where)
            raise TypeError(f"unsupported union {hint} at {where}")
        if origin is list:
            (item_type,) = typing.get_args(hint)
            if not isinstance(value, list):
                self.fail(where, f"expected an array, got {_describe(value)}")
            return [self.convert(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if hint is bool:
            if not isinstance(value, bool):
                self.fail(where, f"expected true or false, got {_describe(value)}")
            return value
        if hint is int:
            return self.number(value, where, integer=True)
        if hint is float:
            return self.number(value, where)
        if hint is str:
            return self.string(value, where)
        if hint is DistSpec:
            return self.dist(value, where)
        if hint is ApiFleetConfig:
            table = dict(self.table(value, where))
            kind = table.pop("kind", "api")
            if kind != "api":
                self.fail(f"{where}.kind", f"overflow must be an api fleet, got {kind!r}")
            table.setdefault("name", "overflow")
            return self.api_fleet(table, where)
        if dataclasses.is_dataclass(hint):
            return self.build(hint, self.table(value, where), where)
        raise TypeError(f"unsupported field type {hint} at {where}")

    def dist(self, value: Any, where: str) -> DistSpec:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return DistSpec("const", value=self.number(value, f"{where}.value"))
        spec: DistSpec = self.build(DistSpec, self.table(value, where), where)
        if spec.dist not in DIST_PARAMS:
            self.fail(
                f"{where}.dist", f"must be one of {', '.join(DIST_PARAMS)}; got {spec.dist!r}"
            )
        needed = DIST_PARAMS[spec.dist]
        for name in needed:
            if getattr(spec, name) is None:
                self.fail(f"{where}.{name}", f"required for dist = {spec.dist!r}")
        for f in dataclasses.fields(DistSpec):
            if f.name != "dist" and f.name not in needed and getattr(spec, f.name) is not None:
                self.fail(
                    f"{where}.{f.name}",
                    f"not a parameter of dist = {spec.dist!r} (it takes {', '.join(needed)})",
                )
        if spec.dist == "uniform" and spec.low > spec.high:
            self.fail(f"{where}.low", f"low {spec.low} is above high {spec.high}")
        return spec

    def api_fleet(self, table: dict, where: str) -> ApiFleetConfig:
        cfg: ApiFleetConfig = self.build(ApiFleetConfig, table, where)
        if cfg.price_usd_per_mtok_input is None or cfg.price_usd_per_mtok_output is None:
            if not cfg.model:
                self.fail(
                    f"{where}.model",
                    "needed to look up prices (or set price_usd_per_mtok_input and _output)",
                )
        return cfg


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def parse_scenario(
    raw: dict[str, Any], path: Path, text: str = "", *, overridden: typing.Iterable[str] = ()
) -> Scenario:
    """Validate parsed TOML (after overrides) into a Scenario.

    `overridden`: key names set by `--set`; errors on them cite no line, as the file's line holds
    the value that was replaced.
    """
    ck = _Checker(path, text, overridden)
    ck.unknown_keys(raw, ("scenario", "workload", "model", "slo", "fleet"), "")

    head = ck.table(raw.get("scenario", {}), "scenario")
    ck.unknown_keys(
        head,
        ("name", "seed", "replications", "price_as_of", "window_s", "horizon_s", "description"),
        "scenario",
    )
    name = ck.string(head.get("name", path.stem), "scenario.name")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        ck.fail(
            "scenario.name",
            f"use letters, digits, '-', '_' or '.' only (it names the run directory); got {name!r}",
        )
    seed = ck.number(head.get("seed", 0), "scenario.seed", integer=True)
    replications = ck.number(head.get("replications", 1), "scenario.replications", integer=True)
    window_s = ck.number(head.get("window_s", 60.0), "scenario.window_s")
    horizon_s = (
        None if "horizon_s" not in head else ck.number(head["horizon_s"], "scenario.horizon_s")
    )
    description = ck.string(head.get("description", ""), "scenario.description")
    price_as_of = _as_of(ck, head.get("price_as_of", "latest"))

    if "workload" not in raw:
        ck.fail("workload", "required table is missing (a trace or a generator)")
    workload = ck.table(raw["workload"], "workload")

    model_t = ck.table(raw.get("model", {}), "model")
    if "model" not in raw or "name" not in model_t:
        ck.fail("model.name", 'required key is missing (e.g. name = "llama-3.1-70b")')
    model = ck.build(ModelSpec, model_t, "model")
    if model.config is not None:
        cfg_path = Path(model.config)
        if not cfg_path.is_absolute():
            cfg_path = path.parent / cfg_path
        if not cfg_path.exists():
            ck.fail("model.config", f"file not found: {cfg_path}")
        model = dataclasses.replace(model, config=str(cfg_path))

    slo_t = ck.table(raw.get("slo", {}), "slo")
    ck.unknown_keys(slo_t, (*SLO_KEYS, "min_success_rate"), "slo")
    targets = {k: ck.number(v, f"slo.{k}") for k, v in slo_t.items() if k != "min_success_rate"}
    for k, v in targets.items():
        if v <= 0:
            ck.fail(f"slo.{k}", f"must be > 0, got {v!r}")
    slo = Slo(
        targets_s=targets,
        min_success_rate=ck.number(
            slo_t.get("min_success_rate", DEFAULT_MIN_SUCCESS_RATE), "slo.min_success_rate"
        ),
    )

    fleet_list = raw.get("fleet")
    if not isinstance(fleet_list, list) or not fleet_list:
        ck.fail("fleet", "at least one [[fleet]] table is required")
    fleets = tuple(_fleet(ck, t, i) for i, t in enumerate(fleet_list))
    seen: dict[str, int] = {}
    for i, f in enumerate(fleets):
        if f.name in seen:
            ck.fail(
                f"fleet[{i}].name", f"duplicate fleet name {f.name!r} (also fleet[{seen[f.name]}])"
            )
        seen[f.name] = i

    return Scenario(
        path=path,
        name=name,
        seed=seed,
        replications=replications,
        price_as_of=price_as_of,
        window_s=window_s,
        horizon_s=horizon_s,
        description=description,
        workload=dict(workload),
        model=model,
        slo=slo,
        fleets=fleets,
        raw=_jsonable(raw),
    )


def _as_of(ck: _Checker, value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if value == "latest":
            return value
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    ck.fail(
        "scenario.price_as_of", f'expected a date (2025-06-01) or "latest", got {_describe(value)}'
    )


def _fleet(ck: _Checker, table: Any, i: int) -> FleetConfig:
    where = f"fleet[{i}]"
    table = dict(ck.table(table, where))
    if "kind" not in table:
        ck.fail(f"{where}.kind", f"required key is missing (one of {', '.join(FLEET_CLASSES)})")
    kind = table["kind"]
    if kind not in FLEET_CLASSES:
        ck.fail(
            f"{where}.kind",
            f"must be one of {', '.join(FLEET_CLASSES)}; got {kind!r}{_suggest(str(kind), FLEET_CLASSES)}",
        )
    table.setdefault("name", f"{kind}-{i}")
    if kind == "api":
        return ck.api_fleet(table, where)
    cfg = ck.build(FLEET_CLASSES[kind], table, where)
    if cfg.tp & (cfg.tp - 1):
        ck.fail(f"{where}.tp", f"tensor parallelism must be a power of two, got {cfg.tp}")
    if isinstance(cfg, CloudFleetConfig):
        if cfg.min_replicas > cfg.max_replicas:
            ck.fail(
                f"{where}.min_replicas",
                f"{cfg.min_replicas} is above max_replicas {cfg.max_replicas}",
            )
        if not cfg.min_replicas <= cfg.initial_replicas <= cfg.max_replicas:
            ck.fail(
                f"{where}.initial_replicas",
                f"must lie in [min_replicas, max_replicas] = [{cfg.min_replicas}, {cfg.max_replicas}]",
            )
        if cfg.price_usd_per_hour is None and not cfg.instance:
            ck.fail(f"{where}.instance", "needed to look up the price (or set price_usd_per_hour)")
        if cfg.gpus_per_instance is None and not cfg.instance:
            ck.fail(f"{where}.gpus_per_instance", "needed when no instance is named to look it up")
    if isinstance(cfg, SelfHostedFleetConfig):
        if (
            cfg.tp > cfg.gpus_per_server * cfg.servers
            or (cfg.servers * cfg.gpus_per_server) % cfg.tp
        ):
            ck.fail(
                f"{where}.tp",
                f"{cfg.servers} x {cfg.gpus_per_server} GPUs do not split into replicas of tp = {cfg.tp}",
            )
        if cfg.pue < 1:
            ck.fail(f"{where}.pue", f"power usage effectiveness is at least 1, got {cfg.pue}")
    if cfg.engine.service == "exponential" and cfg.engine.service_mean_s is None:
        ck.fail(f"{where}.engine.service_mean_s", 'required with service = "exponential"')
    return cfg


def check_models_fit(scenario: Scenario) -> None:
    """Fail on GPU fleets whose replica cannot hold the model's weights plus some KV cache."""
    gpu_fleets = [
        (i, f) for i, f in enumerate(scenario.fleets) if not isinstance(f, ApiFleetConfig)
    ]
    # The model is checked even when no fleet runs the physics model, so a typo never waits.
    factory = make_profile_factory(scenario.model, scenario.path)
    gpu_fleets = [(i, f) for i, f in gpu_fleets if f.engine.service == "physics"]
    for i, f in gpu_fleets:
        profile = factory(f.gpu, f.tp, f.precision, f.engine.mem_util, field_prefix=f"fleet[{i}]")
        if not profile.fits:
            raise InputError(
                str(scenario.path),
                f"fleet[{i}].tp",
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
