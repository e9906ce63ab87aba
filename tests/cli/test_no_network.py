"""The default commands never open a network connection, in Python or inside DuckDB.

Python sockets are refused outright here (stricter than the suite's 127.0.0.1 rule); DuckDB's own
C++ downloads cannot be seen from Python, so the setting that would allow them is checked instead.
"""

from __future__ import annotations

import socket
import textwrap

import pytest
from click.testing import CliRunner

from sim.cli import cli

SCENARIO = textwrap.dedent(
    """
    [workload]
    generator = "poisson"
    rate_per_s = 1.0
    duration_s = 20.0
    prompt_tokens = { dist = "fixed", value = 100 }
    output_tokens = { dist = "fixed", value = 20 }

    [model]
    name = "llama-3.1-8b"

    [[fleet]]
    name = "own"
    kind = "self_hosted"
    gpu = "h100-sxm"
    servers = 1
    gpus_per_server = 1
    tp = 1
    gpu_price_usd = 25000
    """
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tmp_path


def invoke(tmp, *args):
    # The snapshot load of a fresh warehouse is part of the default path, so it stays on.
    return CliRunner().invoke(cli, ["--db", str(tmp / "w.duckdb"), *args], catch_exceptions=False)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{tmp}/s.toml", "--out", "{tmp}/run", "-q"],
        ["prices", "list", "--gpu", "H100"],
        ["sql", "SELECT count(*) AS n FROM prices"],
        ["perf", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4"],
        ["trace", "stats", "builtin:azure2023_conv"],
    ],
    ids=["run", "prices_list", "sql", "perf", "trace_stats"],
)
def test_default_commands_stay_offline(offline, argv):
    (offline / "s.toml").write_text(SCENARIO)
    result = invoke(offline, *[a.replace("{tmp}", str(offline)) for a in argv])
    assert result.exit_code == 0, result.output


def test_duckdb_never_downloads_extensions(offline):
    # With autoinstall on, a URL in `sim sql` made DuckDB fetch httpfs from extensions.duckdb.org
    # (seen with strace: DNS lookups from `sim sql "... read_csv('http://...')"`).
    result = invoke(
        offline,
        "sql",
        "SELECT current_setting('autoinstall_known_extensions') AS v",
        "--format",
        "csv",
    )
    assert result.output.splitlines() == ["v", "False"]


def test_url_in_sql_is_one_line_error(offline):
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(offline / "w.duckdb"),
            "sql",
            "SELECT * FROM read_csv('http://127.0.0.1:9/a')",
        ],
    )
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: SQL: ")
