"""Hostile trace files and workload tables (issue 15): exit 0, or exit 2 with one line on stderr.

Every named case of the issue is a regression test; hypothesis then mutates valid CSV, JSONL and
Parquet traces and drives the real CLI (`sim trace stats FILE`) in-process, with a time limit
per case, and once as a separate process.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.cli import cli
from sim.errors import InputError
from sim.scenario.load import parse_workload
from sim.traffic import build_workload, estimate_requests, load_trace
from sim.traffic.limits import MAX_REQUESTS

AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GENERIC = "timestamp,prompt_tokens,output_tokens\n"
CASE_SECONDS = 20  # a case that takes longer is a hang


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail (instead of hanging the suite) when the body runs longer than `seconds`."""

    def expire(signum, frame):
        raise TimeoutError(f"hang: still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def stats(path, *extra: str):
    with time_limit(CASE_SECONDS):
        return CliRunner().invoke(cli, ["trace", "stats", str(path), *extra])


def assert_clean(result) -> None:
    """Exit 0, or exit 2 with exactly one line on stderr; never a traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback: {result.exception!r}") from result.exception
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr


def assert_refused(result, *needles: str) -> str:
    assert_clean(result)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    for needle in needles:
        assert needle in line, line
    return line


def _parquet(path: Path, **columns) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buffer)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# name -> (file name, file contents, words the one error line must contain[, CLI options])
NAMED_CASES = {
    "timestamp_inf": ("t.csv", GENERIC + "0,1,1\ninf,1,1\n", ["t.csv:3", "not finite"]),
    "timestamp_1e308": ("t.csv", GENERIC + "0,1,1\n1e308,1,1\n", ["t.csv:3", "10 years"]),
    "timestamp_1e15": ("t.csv", GENERIC + "0,1,1\n1e15,1,1\n", ["t.csv:3", "10 years"]),
    "timestamp_nan": ("t.csv", GENERIC + "0,1,1\nnan,1,1\n", ["t.csv:3", "timestamp"]),
    "span_25_years": (
        "t.csv",
        AZURE + "1995-01-01 00:00:00.0,1,1\n2020-01-01 00:00:00.0,1,1\n",
        ["t.csv:3", "10 years"],
    ),
    "year_1925": (
        "t.csv",
        AZURE + "1925-11-16 18:15:46.6805900,10,5\n2023-11-16 18:15:47.6805900,10,5\n",
        ["t.csv:2", "outside 1990-2099"],
    ),
    "year_1": (
        "t.csv",
        AZURE + "0001-11-16 18:15:46.6805900,10,5\n2023-11-16 18:15:47.6805900,10,5\n",
        ["t.csv:2", "outside 1990-2099"],
    ),
    "year_2262": (
        "t.csv",
        AZURE + "2023-11-16 18:15:46.6805900,10,5\n2262-11-16 18:15:47.6805900,10,5\n",
        ["t.csv:3", "outside 1990-2099"],
    ),
    "year_9999_not_backwards": (
        "t.csv",
        AZURE + "2023-11-16 18:15:46.6805900,10,5\n9999-11-16 18:15:47.6805900,10,5\n",
        ["t.csv:3", "outside 1990-2099"],
    ),
    "year_9999_generic_datetime": (
        "t.jsonl",
        '{"timestamp": "2024-01-01T00:00:00", "prompt_tokens": 1, "output_tokens": 1}\n'
        '{"timestamp": "9999-01-01T00:00:00", "prompt_tokens": 1, "output_tokens": 1}\n',
        ["t.jsonl:2", "outside 1990-2099"],
        ["--column", "timestamp_unit=datetime"],
    ),
    "context_tokens_int64_max": (
        "t.csv",
        AZURE + "2023-11-16 18:15:46.6805900,9223372036854775807,5\n",
        ["t.csv:2", "ContextTokens", "1 to 10,000,000"],
    ),
    "context_tokens_over_int64": (
        "t.csv",
        AZURE + "2023-11-16 18:15:46.6805900,99999999999999999999,5\n",
        ["t.csv:2", "ContextTokens"],
    ),
    "prompt_10m_plus_1": ("t.csv", GENERIC + "0,10000001,1\n", ["prompt_tokens", "10,000,000"]),
    "output_5e6_as_float": ("t.csv", GENERIC + "0,1,5e6\n", ["output_tokens", "not an integer"]),
    "negative_output": ("t.csv", GENERIC + "0,1,-1\n", ["output_tokens", "0 to 10,000,000"]),
    "zero_prompt": ("t.csv", GENERIC + "0,0,1\n", ["prompt_tokens", "1 to 10,000,000"]),
    "jsonl_5000_deep_line_1": (
        "t.jsonl",
        '{"timestamp": 1, "prompt_tokens": 2, "output_tokens": 3, "x": ' + _deep(5000) + "}\n",
        ["t.jsonl:1", "nested"],
    ),
    "jsonl_5000_deep_line_2": (
        "t.jsonl",
        '{"timestamp": 1, "prompt_tokens": 2, "output_tokens": 3}\n'
        '{"timestamp": 2, "prompt_tokens": 2, "output_tokens": ' + _deep(5000) + "}\n",
        ["t.jsonl:2", "nested"],
    ),
    "jsonl_not_an_object": ("t.jsonl", "[1, 2, 3]\n", ["t.jsonl:1", "not a JSON object"]),
    "latin1_csv": (
        "t.csv",
        (GENERIC + "0,1,1,caf\xe9\n").encode("latin-1"),
        ["t.csv:2", "not UTF-8"],
    ),
    "latin1_after_first_mib": (
        "t.csv",
        (GENERIC + "0,1,1\n" * 300_000 + "1,1,1\xe9\n").encode("latin-1"),
        ["t.csv:300002", "not UTF-8"],
    ),
    "utf16_csv": ("t.csv", (GENERIC + "0,1,1\n").encode("utf-16"), ["UTF-16"]),
    "binary_nul": ("t.csv", b"timestamp\x00\x01\x02\n", ["NUL"]),
    "gzip_csv": ("t.csv", gzip.compress((GENERIC + "0,1,1\n").encode()), ["gzip-compressed"]),
    "gzip_csv_gz_suffix": (
        "t.csv.gz",
        gzip.compress((GENERIC + "0,1,1\n").encode()),
        ["gzip-compressed"],
    ),
    "bzip2_jsonl": ("t.jsonl", bz2.compress(b'{"timestamp": 1}\n'), ["bzip2-compressed"]),
    "cell_5mb": (
        "t.csv",
        GENERIC + "0,1,1\n1," + "9" * 5_000_000 + "x,1\n",
        ["t.csv:3", "prompt_tokens", "(5,000,001 characters)"],
    ),
    "header_cell_5mb": ("t.csv", "a" * 5_000_000 + "\n1\n", ["cannot detect trace format"]),
    "jsonl_first_line_over_1mib": (
        "t.jsonl",
        '{"timestamp": 1, "x": "' + "a" * 2_000_000 + '"}\n',
        ["line 1 is over 1 MiB"],
    ),
    "empty": ("t.csv", "", ["empty"]),
    "header_only": ("t.csv", GENERIC, ["no data rows"]),
}


@pytest.mark.parametrize("name", sorted(NAMED_CASES))
def test_named_hostile_trace(tmp_path, name):
    file_name, body, needles, *options = NAMED_CASES[name]
    path = tmp_path / file_name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    line = assert_refused(stats(path, *(options[0] if options else [])), *needles)
    assert len(line) < 600, f"error line of {len(line)} characters"


def test_truncated_parquet_says_parquet(tmp_path):
    data = _parquet(tmp_path / "ok.parquet", timestamp=[0.0, 1.0], prompt_tokens=[1, 2],
                    output_tokens=[3, 4])  # fmt: skip
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    line = assert_refused(stats(tmp_path / "cut.parquet"), "not a valid Parquet file")
    assert "JSON" not in line
    # Marks intact, body scrambled: polars' own complaint, still one line about Parquet.
    scrambled = data[:4] + bytes(len(data) - 8) + data[-4:]
    (tmp_path / "zeros.parquet").write_bytes(scrambled)
    assert_refused(stats(tmp_path / "zeros.parquet"), "Parquet")


def test_parquet_out_of_range_values_name_the_row(tmp_path):
    path = tmp_path / "t.parquet"
    _parquet(path, timestamp=[0.0, float("inf")], prompt_tokens=[1, 2], output_tokens=[3, 4])
    assert_refused(stats(path), "row 2", "not finite")
    _parquet(path, timestamp=[0.0, 1.0], prompt_tokens=[1, 2**62], output_tokens=[3, 4])
    assert_refused(stats(path), "row 2", "prompt_tokens", "10,000,000")


@pytest.mark.parametrize(
    "target",
    ["/dev/null", "/dev/zero", "fifo", "directory", "missing"],
)
def test_not_a_regular_file(tmp_path, target):
    path = {"fifo": tmp_path / "f.csv", "directory": tmp_path, "missing": tmp_path / "no.csv"}
    path = path.get(target, Path(target))
    if target == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    needle = {
        "directory": "is a directory",
        "missing": "not found",
    }.get(target, "not a regular file")
    assert_refused(stats(path), str(path), needle)


def test_size_cap_and_its_override(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text(GENERIC + "0,1,1\n1,1,1\n")
    monkeypatch.setenv("INFERCOST_MAX_TRACE_BYTES", "20")
    assert_refused(stats(path), "over the 20-byte limit", "INFERCOST_MAX_TRACE_BYTES")
    monkeypatch.setenv("INFERCOST_MAX_TRACE_BYTES", "lots")
    assert_refused(stats(path), "INFERCOST_MAX_TRACE_BYTES", "positive byte count")
    monkeypatch.setenv("INFERCOST_MAX_TRACE_BYTES", str(path.stat().st_size))
    assert stats(path).exit_code == 0
    with pytest.raises(InputError, match="over the 10-byte limit"):
        load_trace(path, max_bytes=10)


def test_zero_token_outputs_are_accepted(tmp_path):
    # Prefill-only requests (benchmarks, embeddings) generate nothing; issue 10 replays them.
    path = tmp_path / "t.csv"
    path.write_text(AZURE + "2023-11-16 18:15:46.0,10,0\n2023-11-16 18:15:47.0,10,5\n")
    w = load_trace(path)
    assert w.output_tokens.tolist() == [0, 5]
    result = stats(path)
    assert result.exit_code == 0, result.output


# --- workload tables: the request budget and spans, checked before anything is drawn --------

BASE = {
    "prompt_tokens": {"dist": "fixed", "value": 5},
    "output_tokens": {"dist": "fixed", "value": 5},
}
BUDGET_CASES = {
    "rate_per_s_1e12": (
        {"generator": "poisson", "rate_per_s": 1e12, "duration_s": 10.0},
        "workload.rate_per_s: must be <=",
    ),
    "duration_s_1e15": (
        {"generator": "poisson", "rate_per_s": 1e-3, "duration_s": 1e15},
        "workload.duration_s: must be <=",
    ),
    "rate_scale_1e308": (
        {"generator": "poisson", "rate_per_s": 1.0, "duration_s": 10.0, "rate_scale": 1e308},
        "workload.rate_scale: must be <=",
    ),
    "rate_scale_1e6_on_a_trace": (
        {"trace": "builtin:azure2023_code", "rate_scale": 1e6},
        "workload.rate_scale: must be <=",
    ),
    "time_stretch_1e308": (
        {"generator": "poisson", "rate_per_s": 1.0, "duration_s": 10.0, "time_stretch": 1e308},
        "workload.time_stretch: must be <=",
    ),
    "tile_to_s_1e308": (
        {"generator": "poisson", "rate_per_s": 1.0, "duration_s": 10.0, "tile_to_s": 1e308},
        "workload.tile_to_s: must be <=",
    ),
    "gamma_cv_1e9": (
        {"generator": "gamma", "rate_per_s": 1.0, "duration_s": 10.0, "cv": 1e9},
        "workload.cv: must be <= 100",
    ),
    "diurnal_1e9_per_s": (
        {"generator": "diurnal", "rate_per_s": 1e5, "duration_s": 86400.0},
        "over the budget of 100,000,000",
    ),
    "mmpp_dwell_1e-9": (
        {
            "generator": "mmpp",
            "rates_per_s": [1.0, 2.0],
            "dwell_s": [1e-9, 1e-9],
            "duration_s": 3600.0,
        },
        "workload.dwell_s[0]: must be >= 0.001",
    ),  # fmt: skip
    "lognormal_sigma_1e6": (
        {
            "generator": "poisson",
            "rate_per_s": 1.0,
            "duration_s": 10.0,
            "prompt_tokens": {"dist": "lognormal", "median": 100, "sigma": 1e6, "max": 1000},
        },
        "workload.prompt_tokens.sigma: must be <= 5",
    ),  # fmt: skip
    "fixed_prompt_1e20": (
        {
            "generator": "poisson",
            "rate_per_s": 1.0,
            "duration_s": 10.0,
            "prompt_tokens": {"dist": "fixed", "value": 1e20},
        },
        "workload.prompt_tokens.value: must be <= 1e+07",
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(BUDGET_CASES))
def test_absurd_workload_is_one_line(tmp_path, name):
    table, needle = BUDGET_CASES[name]
    cfg = {**BASE, **table} if "generator" in table else table
    scenario = tmp_path / "s.toml"
    scenario.write_text("[workload]\n" + _toml_items(cfg))
    assert_refused(stats(scenario), "s.toml", needle)


def _toml_items(cfg: dict) -> str:
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return f'"{v}"' if isinstance(v, str) else repr(v)

    return "".join(f"{k} = {value(v)}\n" for k, v in cfg.items())


def test_estimate_requests_matches_the_generators():
    rng = np.random.default_rng(0)
    cfg = {**BASE, "generator": "diurnal", "rate_per_s": 2.0, "duration_s": 7200.0}
    w = build_workload(parse_workload(cfg, "s.toml"), base_dir=Path("."), rng=rng, source="s.toml")
    assert estimate_requests(cfg) == pytest.approx(2.0 * 7200 * 1.5)  # candidates at peak
    assert len(w) < estimate_requests(cfg)
    assert estimate_requests({"trace": "x", "rate_scale": 3.0}, trace_requests=1000) == 3000
    assert estimate_requests({**cfg, "tile_to_s": 72000.0}) == pytest.approx(2.0 * 72000 * 1.5)
    big = {"generator": "poisson", "rate_per_s": MAX_REQUESTS, "duration_s": 2.0}
    assert estimate_requests(big) > MAX_REQUESTS


# --- fuzzing: mutated valid traces through the real CLI ---------------------------------------

HOSTILE_CELLS = [
    "", " ", "-1", "0", "1.5", "1e20", "-0", "inf", "-inf", "nan", "NaN", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "1e308", "1e-308", "abc", "\"", "\"\"", ",",
    "\\", "\x00", "é", "\u202e", "2023-11-16 18:15:46", "9999-12-31 23:59:59.9999999",
    "0001-01-01 00:00:00.0", "2024-05-10 00:00:00.009930+99:99", "true", "null", "[]", "{}",
    "[" * 200, "10000001", "0x10", "1_000", " 12 ", "+5",
]  # fmt: skip
ROWS = st.lists(
    st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(1, 50_000), st.integers(0, 5_000)),
    min_size=1,
    max_size=12,
)
CELL = st.one_of(st.sampled_from(HOSTILE_CELLS), st.text(max_size=12))


def _mutate_bytes(data: bytes, draw) -> bytes:
    kind = draw(st.sampled_from(["none", "truncate", "insert", "flip", "duplicate"]))
    if kind == "none" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return data[:at] + data[at:] * 2


@st.composite
def csv_traces(draw) -> tuple[str, bytes]:
    rows = sorted(draw(ROWS))
    azure = draw(st.booleans())
    if azure:
        base = np.datetime64("2023-11-16T18:00:00", "us")
        lines = [AZURE.strip()] + [
            f"{str(base + np.timedelta64(int(t * 1e6), 'us')).replace('T', ' ')},{p},{o}"
            for t, p, o in rows
        ]
    else:
        lines = [GENERIC.strip()] + [f"{t!r},{p},{o}" for t, p, o in rows]
    cells = [line.split(",") for line in lines]
    for _ in range(draw(st.integers(0, 3))):
        r = draw(st.integers(0, len(cells) - 1))
        c = draw(st.integers(0, len(cells[r]) - 1))
        cells[r][c] = draw(CELL)
    text = "\n".join(",".join(row) for row in cells) + "\n"
    return "t.csv", _mutate_bytes(text.encode("utf-8", "surrogatepass"), draw)


@st.composite
def jsonl_traces(draw) -> tuple[str, bytes]:
    rows = sorted(draw(ROWS))
    mooncake = draw(st.booleans())
    keys = ("timestamp", "input_length", "output_length") if mooncake else (
        "timestamp", "prompt_tokens", "output_tokens")  # fmt: skip
    lines = []
    for t, p, o in rows:
        values = [repr(t * 1000 if mooncake else t), str(p), str(o)]
        if draw(st.integers(0, 5)) == 0:
            values[draw(st.integers(0, 2))] = draw(
                st.sampled_from(["null", '"x"', "1e400", "-1", "[1]", "{}", _deep(100), "1.5",
                                 "true", "9223372036854775807", '"' + "9" * 300 + '"'])
            )  # fmt: skip
        extra = ', "hash_ids": [1, 2]' if mooncake else ""
        lines.append(
            "{" + ", ".join(f'"{k}": {v}' for k, v in zip(keys, values, strict=True)) + extra + "}"
        )
    return "t.jsonl", _mutate_bytes(("\n".join(lines) + "\n").encode(), draw)


@st.composite
def parquet_traces(draw) -> tuple[str, bytes]:
    rows = sorted(draw(ROWS))
    t = [r[0] for r in rows]
    if draw(st.booleans()):
        t[draw(st.integers(0, len(t) - 1))] = draw(
            st.sampled_from([float("inf"), float("nan"), 1e308, -1.0, 1e15])
        )
    columns = {
        "timestamp": t,
        "prompt_tokens": [r[1] for r in rows],
        "output_tokens": [r[2] for r in rows],
    }
    if draw(st.booleans()):
        columns["prompt_tokens"][0] = draw(st.sampled_from([0, -5, 2**62, 10_000_001]))
    buffer = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buffer)
    return "t.parquet", _mutate_bytes(buffer.getvalue(), draw)


FUZZ = settings(
    max_examples=100,
    deadline=CASE_SECONDS * 1000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fuzz_one(tmp_path: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    path = tmp_path / name
    path.write_bytes(data)
    result = stats(path)
    assert_clean(result)
    event(f"exit {result.exit_code}")


@FUZZ
@given(case=csv_traces())
def test_fuzz_csv_traces(tmp_path, case):
    _fuzz_one(tmp_path, case)


@FUZZ
@given(case=jsonl_traces())
def test_fuzz_jsonl_traces(tmp_path, case):
    _fuzz_one(tmp_path, case)


@FUZZ
@given(case=parquet_traces())
def test_fuzz_parquet_traces(tmp_path, case):
    _fuzz_one(tmp_path, case)


def test_real_process_on_a_fifo_and_a_deep_line(tmp_path):
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    deep = tmp_path / "d.jsonl"
    deep.write_text('{"timestamp": 1, "prompt_tokens": 2, "output_tokens": ' + _deep(5000) + "}\n")
    code = "from sim.cli import main; main()"
    for path in (fifo, deep):
        result = subprocess.run(
            [sys.executable, "-c", code, "trace", "stats", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {deep}:1: JSON nested 5001 levels deep")


# --- fuzzing: hostile numbers in [workload] tables ----------------------------------------------

NUMBERS = st.sampled_from(
    [0, -1, 1e-300, 1e-12, 1e-3, 0.5, 1, 3, 60, 3600, 1e5, 1e6, 1e9, 1e12, 1e15, 1e308,
     float("inf"), float("nan"), True]
)  # fmt: skip


@st.composite
def workload_tables(draw) -> dict:
    generator = draw(st.sampled_from(["poisson", "gamma", "diurnal", "mmpp", "trace"]))
    if generator == "trace":
        table = {"trace": "builtin:azure2023_code"}
    else:
        table = {"generator": generator, "duration_s": draw(NUMBERS), **BASE}
        if generator == "mmpp":
            table["rates_per_s"] = draw(st.lists(NUMBERS, min_size=1, max_size=3))
            table["dwell_s"] = draw(st.lists(NUMBERS, min_size=1, max_size=3))
        else:
            table["rate_per_s"] = draw(NUMBERS)
        if generator == "gamma":
            table["cv"] = draw(NUMBERS)
        if draw(st.booleans()):
            table["prompt_tokens"] = {"dist": "lognormal", "median": draw(NUMBERS),
                                      "sigma": draw(NUMBERS), "max": draw(NUMBERS)}  # fmt: skip
    for key in ("rate_scale", "time_stretch", "tile_to_s", "sample_frac"):
        if draw(st.integers(0, 3)) == 0:
            table[key] = draw(NUMBERS)
    return table


@settings(max_examples=150, deadline=CASE_SECONDS * 1000,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(table=workload_tables())
def test_fuzz_workload_tables_build_or_fail_with_one_input_error(table):
    # A small budget keeps each case small; the checks are the same as at 100M.
    limit = 200_000
    with pytest.MonkeyPatch.context() as patch, time_limit(CASE_SECONDS):
        patch.setattr("sim.traffic.limits.MAX_REQUESTS", limit)
        try:
            spec = parse_workload(table, "s.toml")
            w = build_workload(spec, base_dir=Path("."), rng=np.random.default_rng(0),
                               source="s.toml")  # fmt: skip
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("s.toml: workload")
            event("refused")
            return
    event("built")
    # Means, not bounds: a Poisson draw may exceed its mean by a few standard deviations.
    assert len(w) <= 1.1 * limit + 100
    assert np.all(np.isfinite(w.arrival_s))
    assert w.duration_s <= 10 * 365.25 * 86400


@pytest.mark.parametrize(
    "kind, needle",
    [("fifo", "not a regular file"), ("latin1", "not UTF-8"), ("deep", "nested too deep"),
     ("huge", "a scenario is at most"), ("missing", "No such file")],
)  # fmt: skip
def test_hostile_scenario_file_for_trace_stats(tmp_path, kind, needle):
    path = tmp_path / "s.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "latin1":
        path.write_bytes('[workload]\nname = "caf\xe9"\n'.encode("latin-1"))
    elif kind == "deep":
        path.write_text("[workload]\nx = " + _deep(5000) + "\n")
    elif kind == "huge":
        path.write_text("[workload]\n" + "# padding\n" * 200_000)
    assert_refused(stats(path), "s.toml", needle)
