"""`sim sql` cannot read or write outside the warehouse, whatever wraps the statement.

DuckDB's own settings (no external access, no extension loading, configuration locked) make the
guarantee; the statement filter only words the refusal of plain writes. Each forbidden statement
exits 2 with one line on stderr and leaves the working directory, a target in /tmp and the
warehouse file exactly as they were.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import cli
from warehouse.db import Warehouse

TMP_TARGET = f"/tmp/infercost-sandbox-{uuid.uuid4().hex}"

FORBIDDEN = [
    "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM read_csv('secret.csv')",
    "SELECT * FROM 'secret.csv'",
    "INSTALL httpfs",
    "EXPLAIN ANALYZE INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH 'other.duckdb' AS other",
    "EXPLAIN ANALYZE ATTACH 'other.duckdb' AS other",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "COPY (SELECT 1) TO 'x.csv'",
    "COPY scrape_runs TO 'secret.csv'",
    f"EXPLAIN ANALYZE COPY scrape_runs TO '{TMP_TARGET}.parquet' (FORMAT parquet)",
    f"EXPLAIN ANALYZE COPY (SELECT * FROM read_text('/etc/hostname')) TO '{TMP_TARGET}.csv'",
    "EXPORT DATABASE 'dump'",
    "EXPLAIN ANALYZE EXPORT DATABASE 'dump'",
    "IMPORT DATABASE 'dump'",
    "SELECT 1; COPY (SELECT 1) TO 'x.csv'",
    "SELECT 1; EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",
    "FROM '/etc/passwd'",
    "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
    "SUMMARIZE read_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('secret.csv')",
    "SELECT * FROM glob('{warehouse_dir}/*')",
    "SELECT * FROM read_blob('{warehouse_dir}/*')",
    "ATTACH '{warehouse}' AS again",
    "CREATE TABLE t AS SELECT 1",
    "DELETE FROM scrape_runs",
]


@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sandbox") / "w.duckdb"
    Warehouse(path, load_snapshot=False)  # migrated, no prices: the sandbox is what is tested
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The cwd of the command, holding a file a relative path could read or overwrite."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.csv").write_text("a\nsecret\n")
    (tmp_path / "x.csv").write_text("do not overwrite\n")
    return tmp_path


def _state(workdir: Path, warehouse_file: Path) -> dict:
    files = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    tmp = sorted(p for p in os.listdir("/tmp") if p.startswith(Path(TMP_TARGET).name))
    digest = hashlib.sha256(warehouse_file.read_bytes()).hexdigest()
    return {"cwd": files, "tmp": tmp, "warehouse": digest, "wal": os.listdir(warehouse_file.parent)}


def _sql(warehouse_file: Path, query: str):
    return CliRunner().invoke(cli, ["--db", str(warehouse_file), "sql", query])


def _assert_refused(result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SQL: "), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("query", FORBIDDEN)
def test_forbidden_statement_exits_2_and_touches_nothing(warehouse_file, workdir, query):
    query = query.format(warehouse_dir=warehouse_file.parent, warehouse=warehouse_file)
    before = _state(workdir, warehouse_file)
    _assert_refused(_sql(warehouse_file, query))
    assert _state(workdir, warehouse_file) == before


def test_several_statements_run_in_order_and_each_result_is_shown(warehouse_file, workdir):
    result = _sql(warehouse_file, "SELECT 1 AS a; SELECT 2 AS b")
    assert result.exit_code == 0, result.output
    assert result.stdout.index(" a") < result.stdout.index(" b")
    csv = CliRunner().invoke(
        cli, ["--db", str(warehouse_file), "sql", "SELECT 1 AS a; SELECT 2 AS b", "--format", "csv"]
    )
    assert csv.stdout.splitlines() == ["a", "1", "", "b", "2"]


def test_warehouse_itself_stays_readable(warehouse_file, workdir):
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(warehouse_file),
            "sql",
            "SELECT count(*) AS n FROM scrape_runs; SELECT current_setting('enable_external_access') AS ext",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"n": 0' in result.stdout and '"ext": false' in result.stdout


def test_memory_warehouse_is_sandboxed_too(workdir):
    result = CliRunner().invoke(
        cli, ["--db", ":memory:", "sql", "EXPLAIN ANALYZE COPY (SELECT 1) TO 'y.csv'"]
    )
    _assert_refused(result)
    assert not (workdir / "y.csv").exists()


# Statements that reach outside the warehouse, and the shapes a filter on statement types misses.
_CORES = [
    "COPY (SELECT 1) TO 'x.csv'",
    "COPY (SELECT 42 AS v) TO 'new.csv'",
    "COPY (SELECT 1) TO 'new.parquet' (FORMAT parquet)",
    "INSTALL httpfs",
    "ATTACH 'new.duckdb'",
    "EXPORT DATABASE 'newdir'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
]
_READERS = [
    "read_text('/etc/hostname')",
    "read_blob('secret.csv')",
    "read_csv('secret.csv')",
    "read_csv_auto('/etc/passwd')",
    "glob('*')",
    "read_parquet('secret.csv')",
]


@st.composite
def _wrapped(draw) -> tuple[str, bool]:
    """A forbidden statement in some wrapper, and whether it may succeed: a plain EXPLAIN (no
    ANALYZE) of a write only shows its plan and runs nothing."""
    may_succeed = False
    if draw(st.booleans()):
        wrapper = draw(
            st.sampled_from(["{}", "EXPLAIN {}", "EXPLAIN ANALYZE {}", "explain analyze {}"])
        )
        may_succeed = wrapper == "EXPLAIN {}"
        core = wrapper.format(draw(st.sampled_from(_CORES)))
    else:
        reader = draw(st.sampled_from(_READERS))
        core = draw(
            st.sampled_from(
                [
                    "SELECT * FROM {}",
                    "SELECT count(*) FROM {}",
                    "WITH t AS (SELECT * FROM {}) SELECT * FROM t",
                    "SELECT * FROM (SELECT * FROM {}) s",
                    "SELECT 1 WHERE EXISTS (SELECT * FROM {})",
                    "EXPLAIN SELECT * FROM {}",
                    "EXPLAIN ANALYZE SELECT * FROM {}",
                    "SUMMARIZE SELECT * FROM {}",
                ]
            )
        ).format(reader)
    before = draw(st.sampled_from(["", "SELECT 1; ", "/* c */ ", "\n  ", "SELECT 1;\n-- x\n"]))
    after = draw(st.sampled_from(["", ";", " ; ", "; SELECT 2"]))
    return before + core + after, may_succeed


@settings(
    max_examples=60,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=_wrapped())
def test_any_wrapper_of_a_forbidden_statement_is_refused(warehouse_file, workdir, case):
    query, may_succeed = case
    before = _state(workdir, warehouse_file)
    result = _sql(warehouse_file, query)
    if not (may_succeed and result.exit_code == 0):
        _assert_refused(result)
    assert _state(workdir, warehouse_file) == before


def test_real_process_refuses_explain_analyze_copy(warehouse_file, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "--db",
            str(warehouse_file),
            "sql",
            "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Permission Error" in result.stderr
    assert list(tmp_path.iterdir()) == []
