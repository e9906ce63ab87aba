"""Trace loaders: the shipped Azure 2023 traces, hand-written samples of the other formats, and
broken files that must fail with file, field and line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.traffic import (
    builtin_traces,
    detect_format,
    load_trace,
    prefix_cache_hits,
    resolve_trace_path,
    trace_stats,
)
from sim.workload import Workload

DATA = Path(__file__).parent / "data"
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- shipped Azure 2023 traces; expected figures from ../shared/traces/SOURCES.md -------------


def test_builtin_traces_are_listed_and_byte_exact():
    assert builtin_traces() == ["azure2023_code", "azure2023_conv"]
    # sha256 of the upstream files at commit 790921015d50dd6aae7f7e47f39ba0e235ad6b08.
    expected = {
        "azure2023_code": "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
        "azure2023_conv": "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
    }
    for name, digest in expected.items():
        path = resolve_trace_path(f"builtin:{name}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert (path.parent / "ATTRIBUTION.md").is_file()


@pytest.mark.parametrize(
    "name, rows, span_s, rate, cv, in_mean, in_p50, in_p99, out_mean, out_p50",
    [
        # SOURCES.md: code 8,819 rows, 3,436 s, 2.57/s, CV 13.2, input 2,048/1,469/7,436, output 27.9/13
        ("azure2023_code", 8819, 3436, 2.57, 13.2, 2048, 1469, 7436, 27.9, 13),
        # SOURCES.md: conv 19,366 rows, 3,502 s, 5.53/s, CV 1.09, input 1,155/1,020/4,142, output 211/129
        ("azure2023_conv", 19366, 3502, 5.53, 1.09, 1155, 1020, 4142, 211, 129),
    ],
)
def test_azure2023_matches_published_figures(
    name, rows, span_s, rate, cv, in_mean, in_p50, in_p99, out_mean, out_p50
):
    path = resolve_trace_path(f"builtin:{name}")
    assert detect_format(path) == "azure2023"
    w = load_trace(path)
    s = trace_stats(w)
    assert s["requests"] == rows
    assert w.arrival_s[0] == 0.0
    assert s["span_s"] == pytest.approx(span_s, abs=0.5)
    assert s["mean_rate_per_s"] == pytest.approx(rate, abs=0.005)
    assert s["interarrival_cv"] == pytest.approx(cv, abs=0.05)
    assert s["prompt_tokens"]["mean"] == pytest.approx(in_mean, abs=0.5)
    assert s["prompt_tokens"]["p50"] == in_p50
    assert s["prompt_tokens"]["p99"] == pytest.approx(in_p99, abs=1)
    assert s["output_tokens"]["mean"] == pytest.approx(out_mean, abs=0.5)
    assert s["output_tokens"]["p50"] == out_p50
    assert w.prompt_tokens.dtype == np.int64 and w.arrival_s.dtype == np.float64


def test_azure2023_first_gap_from_the_file():
    # Rows 1 and 2 of azure2023_code.csv: 18:17:03.9799600 and 18:17:04.0319600 -> 0.052 s.
    w = load_trace(resolve_trace_path("builtin:azure2023_code"))
    assert w.arrival_s[1] == pytest.approx(0.052, abs=1e-9)
    assert (w.prompt_tokens[0], w.output_tokens[0]) == (4808, 10)


def test_busiest_minute_ratio_matches_sources():
    # SOURCES.md: busiest minute / mean minute 4.1x (code), 1.5x (conv); code has empty minutes.
    code = trace_stats(load_trace(resolve_trace_path("builtin:azure2023_code")))
    conv = trace_stats(load_trace(resolve_trace_path("builtin:azure2023_conv")))
    assert 4.0 <= code["busiest_minute_ratio"] <= 4.3
    assert 1.4 <= conv["busiest_minute_ratio"] <= 1.6
    assert code["empty_minutes"] > 0 and conv["empty_minutes"] == 0
    assert code["fano_60s"] > conv["fano_60s"] > 1


# --- other formats, hand-written samples -----------------------------------------------------


def test_azure2024_offsets():
    path = DATA / "azure2024_sample.csv"
    assert detect_format(path) == "azure2024"
    w = load_trace(path)
    # 00:00:00.009930, .512345 and 02.009930 (+00:00) -> 0, 0.502415, 2.0 s.
    np.testing.assert_allclose(w.arrival_s, [0.0, 0.502415, 2.0], atol=1e-9)
    assert w.prompt_tokens.tolist() == [2162, 100, 300]
    assert w.output_tokens.tolist() == [5, 20, 7]


def test_burstgpt_all_models_drops_failed():
    path = DATA / "burstgpt_sample.csv"
    assert detect_format(path) == "burstgpt"
    w = load_trace(path)
    # 6 rows, 2 with Response tokens = 0; timestamps are already seconds from trace start.
    assert w.meta["dropped_failed"] == 2
    assert w.arrival_s.tolist() == [5.0, 30.0, 118.0, 120.0]
    assert w.prompt_tokens.tolist() == [472, 200, 417, 50]


@pytest.mark.parametrize(
    "model, arrivals, dropped",
    [("ChatGPT", [5.0, 30.0, 120.0], 1), ("GPT-4", [118.0], 1)],
)
def test_burstgpt_model_filter(model, arrivals, dropped):
    w = load_trace(DATA / "burstgpt_sample.csv", model=model)
    assert w.arrival_s.tolist() == arrivals
    assert w.meta["dropped_failed"] == dropped


def test_burstgpt_unknown_model_names_choices():
    with pytest.raises(InputError, match="no rows for model 'Claude'.*ChatGPT"):
        load_trace(DATA / "burstgpt_sample.csv", model="Claude")


def test_mooncake_hash_ids_and_prefix_cache():
    path = DATA / "mooncake_sample.jsonl"
    assert detect_format(path) == "mooncake"
    w = load_trace(path)
    assert w.arrival_s.tolist() == [0.0, 0.0, 3.0, 3.0, 6.0]  # milliseconds -> seconds
    offsets, values = w.meta["hash_ids"]
    assert offsets.tolist() == [0, 3, 6, 8, 9, 14]
    assert values[offsets[4] : offsets[5]].tolist() == [5, 6, 7, 8, 9]
    # Hand count with 512-token blocks: [0,1,2] new; [0,1,3] hits 2 blocks = 1024;
    # [0,4] hits 1 = 512; [0] hits 1 but a 512-token prompt recomputes its last token = 511.
    assert w.cached_prompt_tokens.tolist() == [0, 1024, 512, 511, 0]


def test_prefix_cache_stops_at_first_miss():
    # Block 7 was seen, but after a miss the prefix no longer matches.
    offsets = np.array([0, 2, 4])
    values = np.array([1, 7, 2, 7])
    cached = prefix_cache_hits(offsets, values, np.array([2000, 2000]), 512)
    assert cached.tolist() == [0, 0]


def test_generic_csv_with_mapping():
    mapping = {"timestamp": "ts_ms", "prompt_tokens": "in", "output_tokens": "out",
               "timestamp_unit": "ms"}  # fmt: skip
    w = load_trace(DATA / "generic_sample.csv", mapping=mapping)
    assert w.arrival_s.tolist() == [0.0, 0.5, 3.0]  # rebased to the first row
    assert w.prompt_tokens.tolist() == [10, 20, 30]
    assert w.meta["format"] == "generic_csv"


def test_generic_jsonl_datetimes():
    path = DATA / "generic_sample.jsonl"
    assert detect_format(path) == "generic_jsonl"
    w = load_trace(path, mapping={"timestamp_unit": "datetime"})
    assert w.arrival_s.tolist() == [0.0, 1.5, 60.0]
    assert w.output_tokens.tolist() == [5, 6, 7]


def test_generic_parquet(tmp_path):
    path = tmp_path / "calls.parquet"
    pl.DataFrame({"t_us": [5_000_000, 5_250_000], "pin": [3, 4], "pout": [8.0, 9.0]}).write_parquet(
        path
    )
    mapping = {"timestamp": "t_us", "prompt_tokens": "pin", "output_tokens": "pout",
               "timestamp_unit": "us"}  # fmt: skip
    assert detect_format(path) == "generic_parquet"
    w = load_trace(path, mapping=mapping)
    assert w.arrival_s.tolist() == [0.0, 0.25]
    assert w.output_tokens.tolist() == [8, 9]


def test_generic_parquet_fractional_tokens_name_the_row(tmp_path):
    path = tmp_path / "calls.parquet"
    pl.DataFrame({"timestamp": [0.0, 1.0], "prompt_tokens": [3, 4], "output_tokens": [8.0, 9.5]}).write_parquet(path)  # fmt: skip
    with pytest.raises(InputError, match=r"output_tokens: row 2: not an integer"):
        load_trace(path)


# --- broken files: exit-2 errors with file, field and line ----------------------------------


@pytest.mark.parametrize(
    "body, field, line, reason",
    [
        ("2023-11-16 18:17:03.1,10,5\n2023-11-16 18:17:04.0,abc,5\n", "ContextTokens", 3,
         "not an integer: 'abc'"),
        ("2023-11-16 18:17:03.1,10,5\n2023-11-16 18:17:02.0,10,5\n", "TIMESTAMP", 3,
         "time goes backwards"),
        ("2023-11-16 18:17:03.1,10,5\n2023-11-16 18:17:04.0,10,5\n2023-11-16 18:17:05.0,10,-3\n",
         "GeneratedTokens", 4, "tokens must be 0 to 10,000,000, got -3"),
        ("2023-11-16 18:17:03.1,0,5\n", "ContextTokens", 2, "tokens must be 1 to 10,000,000, got 0"),
        ("2023-11-16 18:17:03.1,10,5\nyesterday,10,5\n", "TIMESTAMP", 3,
         "not a valid timestamp: 'yesterday'"),
    ],
)  # fmt: skip
def test_broken_azure_rows_name_file_field_line(tmp_path, body, field, line, reason):
    path = write(tmp_path, "broken.csv", AZURE_HEADER + body)
    with pytest.raises(InputError) as info:
        load_trace(path)
    err = info.value
    assert (err.source, err.field, err.line) == (str(path), field, line)
    assert reason in err.reason
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_earliest_problem_wins(tmp_path):
    body = "2023-11-16 18:17:03.1,10,x\n2023-11-16 18:17:04.0,y,5\n"
    with pytest.raises(InputError) as info:
        load_trace(write(tmp_path, "b.csv", AZURE_HEADER + body))
    assert (info.value.field, info.value.line) == ("GeneratedTokens", 2)


def test_ragged_csv_line(tmp_path):
    path = write(tmp_path, "r.csv", AZURE_HEADER + "2023-11-16 18:17:03.1,10,5\n2023-11-16 18:17:04.0,10,5,9\n")  # fmt: skip
    with pytest.raises(InputError) as info:
        load_trace(path)
    assert info.value.line == 3 and "expected 3 fields, found 4" in info.value.reason


def test_missing_column(tmp_path):
    path = write(tmp_path, "m.csv", "ts_ms,in\n1,2\n")
    with pytest.raises(InputError) as info:
        load_trace(
            path, mapping={"timestamp": "ts_ms", "prompt_tokens": "in", "output_tokens": "out"}
        )
    assert info.value.field == "out" and "missing column" in info.value.reason


def test_undetectable_format(tmp_path):
    path = write(tmp_path, "x.csv", "when,what\n1,2\n")
    with pytest.raises(InputError, match="cannot detect trace format"):
        load_trace(path)


def test_mooncake_bad_json_line(tmp_path):
    good = (DATA / "mooncake_sample.jsonl").read_text().splitlines()
    path = write(tmp_path, "m.jsonl", "\n".join([good[0], good[1], '{"timestamp": 9, "input_len']))
    with pytest.raises(InputError) as info:
        load_trace(path)
    assert info.value.line == 3 and "not valid JSON" in info.value.reason


def test_mooncake_string_tokens(tmp_path):
    good = (DATA / "mooncake_sample.jsonl").read_text().splitlines()
    bad = '{"timestamp": 9000, "input_length": "many", "output_length": 3, "hash_ids": [1]}'
    path = write(tmp_path, "m.jsonl", "\n".join([*good, bad]) + "\n")
    with pytest.raises(InputError) as info:
        load_trace(path)
    assert (info.value.field, info.value.line) == ("input_length", 6)


def test_model_filter_only_for_burstgpt():
    with pytest.raises(InputError, match="model"):
        load_trace(resolve_trace_path("builtin:azure2023_conv"), model="ChatGPT")


def test_resolve_relative_and_missing(tmp_path):
    write(tmp_path, "t.csv", AZURE_HEADER + "2023-11-16 18:17:03.1,10,5\n")
    assert resolve_trace_path("t.csv", tmp_path) == tmp_path / "t.csv"
    with pytest.raises(InputError, match="trace file not found"):
        resolve_trace_path("absent.csv", tmp_path)
    with pytest.raises(InputError, match="unknown builtin trace; available: azure2023_code"):
        resolve_trace_path("builtin:sharegpt")


def test_burstgpt_empty_prompts_dropped_and_counted(tmp_path):
    body = (DATA / "burstgpt_sample.csv").read_text() + "130,ChatGPT,0,12,12,API log\n"
    w = load_trace(write(tmp_path, "b.csv", body))
    assert (w.meta["dropped_failed"], w.meta["dropped_empty_prompt"]) == (2, 1)
    assert len(w) == 4


def test_burstgpt_negative_tokens_are_errors(tmp_path):
    body = (DATA / "burstgpt_sample.csv").read_text() + "130,ChatGPT,-5,12,7,API log\n"
    with pytest.raises(InputError) as info:
        load_trace(write(tmp_path, "b.csv", body))
    assert (info.value.field, info.value.line) == ("Request tokens", 8)


def test_mapping_values_must_be_names():
    with pytest.raises(InputError, match="columns.timestamp: must be a column name"):
        load_trace(DATA / "generic_sample.csv", mapping={"timestamp": 3})


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(1, 200_000), st.integers(1, 10_000)),
        min_size=1,
        max_size=50,
    )
)
def test_generic_csv_round_trip(tmp_path_factory, rows):
    # Any sorted table of (microseconds, prompt, output) comes back exactly, rebased to row 1.
    rows = sorted(rows)
    path = tmp_path_factory.mktemp("rt") / "t.csv"
    path.write_text("timestamp,prompt_tokens,output_tokens\n" + "".join(f"{t},{p},{o}\n" for t, p, o in rows))  # fmt: skip
    w = load_trace(path, mapping={"timestamp_unit": "us"})
    t_us = np.array([r[0] for r in rows])
    np.testing.assert_allclose(w.arrival_s, (t_us - t_us[0]) * 1e-6, rtol=1e-12, atol=1e-9)
    assert w.prompt_tokens.tolist() == [r[1] for r in rows]
    assert w.output_tokens.tolist() == [r[2] for r in rows]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), max_size=300))
def test_stats_never_fail_and_peak_window_covers_all(times):
    w = Workload(np.sort(np.array(times, dtype=np.float64)), np.ones(len(times), np.int64),
                 np.ones(len(times), np.int64))  # fmt: skip
    s = trace_stats(w)
    assert s["requests"] == len(times)
    # Pigeonhole: floor(span/60) + 1 blocks of 60 s cover every arrival, and the window that
    # starts at a block's first arrival holds that whole block.
    if len(times):
        blocks = int(s["span_s"] // 60) + 1
        assert round(s["peak_rate_per_s"] * 60) * blocks >= len(times)


def test_short_line_is_a_missing_value(tmp_path):
    path = write(tmp_path, "s.csv", AZURE_HEADER + "2023-11-16 18:17:03.1,10,5\n2023-11-16 18:17:04.0,10\n")  # fmt: skip
    with pytest.raises(InputError) as info:
        load_trace(path)
    assert str(info.value) == f"{path}:3: GeneratedTokens: missing value"


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="the file is empty"):
        load_trace(write(tmp_path, "e.csv", ""))


def test_other_utc_offsets_are_honoured(tmp_path):
    # 00:00:00 at -05:00 is 05:00 UTC; 05:00:01+00:00 is one second later.
    body = "2024-05-10 00:00:00.000000-05:00,1,1\n2024-05-10 05:00:01.000000+00:00,1,1\n"
    w = load_trace(write(tmp_path, "o.csv", AZURE_HEADER + body))
    assert w.meta["format"] == "azure2024"
    assert w.arrival_s.tolist() == [0.0, 1.0]
