"""The one scenario schema: JSON Schema export, `sim scenario check`, generated docs, and a
layout without import circles."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.scenario.reference import replace_reference

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "scenarios").glob("*.toml"))


def _schema() -> dict:
    result = CliRunner().invoke(cli, ["scenario", "schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_every_shipped_scenario_validates_against_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED:
        doc = _jsonable(tomllib.loads(path.read_text()))
        errors = list(validator.iter_errors(doc))
        assert not errors, (path.name, [e.message for e in errors[:3]])
    # and the JSON Schema is strict: an unknown key is an error there too
    bad = _jsonable(tomllib.loads(SHIPPED[0].read_text()))
    bad["fleet"][1]["max_replica"] = 3
    assert list(validator.iter_errors(bad))


def test_scenario_check_accepts_the_shipped_files():
    result = CliRunner().invoke(cli, ["scenario", "check", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == len(SHIPPED)


def test_scenario_check_names_an_unknown_key_with_a_suggestion(tmp_path):
    text = (REPO / "scenarios" / "peak.toml").read_text()
    path = tmp_path / "typo.toml"
    path.write_text(text.replace("max_replicas = 4", "max_replica = 4"))
    line = text[: text.index("max_replicas = 4")].count("\n") + 1
    result = CliRunner().invoke(cli, ["scenario", "check", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {path}:{line}: fleet[1].max_replica: unknown key (did you mean max_replicas?)"
    )


def test_a_scenario_without_fleets_is_valid_for_check_but_not_for_run(tmp_path):
    path = tmp_path / "bare.toml"
    path.write_text(
        '[workload]\ntrace = "builtin:azure2023_conv"\n[model]\nname = "llama-3.1-8b"\n'
    )
    assert CliRunner().invoke(cli, ["scenario", "check", str(path)]).exit_code == 0
    result = CliRunner().invoke(cli, ["run", str(path), "--no-record"])
    assert result.exit_code == 2
    assert "fleet: at least one [[fleet]] table is required" in result.output


def test_docs_key_reference_is_generated_from_the_schema():
    doc = (REPO / "docs" / "scenarios.md").read_text()
    assert replace_reference(doc) == doc, "run: python scripts/gen_scenario_docs.py"
    for key in ("max_replicas", "rate_scale", "price_max_age_days", "min_success_rate"):
        assert f"| `{key}` |" in doc


def _imports(path: Path, module: str) -> set[str]:
    """Modules of `sim` imported at module level (function-level imports are deferred)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "sim" or m.startswith("sim.")}


def test_sim_has_no_import_circles():
    modules = {}
    for path in (REPO / "sim").rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    def with_parents(target: str) -> set[str]:
        # Importing sim.a.b runs sim/a/__init__.py first: that is an import of sim.a too.
        parts = target.split(".")
        return {".".join(parts[:k]) for k in range(2, len(parts) + 1)} & set(modules)

    graph = {
        name: {
            t
            for m in _imports(path, name)
            if (r := resolve(m))
            for t in with_parents(r)
            if t != name
        }
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a circle through the package.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # outputs never import the report, and the report computes no analysis
    assert not any(t.startswith("sim.report") for t in graph["sim.outputs.rundir"])
    assert not any(t.startswith("sim.analysis") for t in graph["sim.report.html"])


def test_model_kv_dtype_sets_the_kv_cache_apart_from_the_weights():
    from sim.scenario import load_scenario, make_profile_factory

    peak = REPO / "scenarios" / "peak.toml"
    fp8 = load_scenario(peak, ['model.precision="fp8"'])
    fp8_bf16_kv = load_scenario(peak, ['model.precision="fp8"', 'model.kv_dtype="bf16"'])
    same = make_profile_factory(fp8.model)("h100-sxm", 8)
    wide = make_profile_factory(fp8_bf16_kv.model)("h100-sxm", 8)
    # Same weights, KV at 2 bytes instead of 1: half the tokens fit (to the 16-token block).
    assert abs(wide.kv_capacity_tokens - same.kv_capacity_tokens / 2) <= 16
    with pytest.raises(Exception, match="model.kv_dtype"):
        load_scenario(peak, ['model.kv_dtype="fp4"'])
