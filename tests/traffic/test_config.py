"""build_workload: the scenario [workload] table, its transforms and its errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.scenario.load import parse_workload
from sim.traffic import build_workload, load_trace, resolve_trace_path

DATA = Path(__file__).parent / "data"
SOURCE = "scenarios/x.toml"
LOGNORMAL = {
    "prompt_tokens": {"dist": "lognormal", "median": 1020, "sigma": 0.8, "max": 8192},
    "output_tokens": {"dist": "lognormal", "median": 129, "sigma": 1.0, "max": 2048},
}


def build(cfg: dict, seed: int = 0, base_dir: Path = DATA):
    """Validate the table with the scenario schema, then build it (as `sim run` does)."""
    spec = parse_workload(cfg, SOURCE)
    return build_workload(spec, base_dir=base_dir, rng=np.random.default_rng(seed), source=SOURCE)


def test_builtin_trace_with_window():
    full = load_trace(resolve_trace_path("builtin:azure2023_conv"))
    w = build({"trace": "builtin:azure2023_conv", "window_s": [0.0, 600.0]})
    assert len(w) == int(np.sum(full.arrival_s < 600.0))
    assert 0 < w.duration_s < 600.0
    assert w.name == "azure2023_conv.csv"


def test_relative_trace_path_and_model_filter(tmp_path):
    shutil.copy(DATA / "burstgpt_sample.csv", tmp_path / "b.csv")
    w = build({"trace": "b.csv", "model_filter": "ChatGPT"}, base_dir=tmp_path)
    assert w.arrival_s.tolist() == [5.0, 30.0, 120.0]


def test_generic_columns():
    cols = {"timestamp": "ts_ms", "prompt_tokens": "in", "output_tokens": "out", "timestamp_unit": "ms"}  # fmt: skip
    w = build({"trace": "generic_sample.csv", "format": "generic_csv", "columns": cols})
    assert w.arrival_s.tolist() == [0.0, 0.5, 3.0]


def test_poisson_generator_and_determinism():
    cfg = {"generator": "poisson", "rate_per_s": 5.0, "duration_s": 600.0, **LOGNORMAL}
    a, b = build(cfg, seed=1), build(cfg, seed=1)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    np.testing.assert_array_equal(a.prompt_tokens, b.prompt_tokens)
    assert abs(len(a) - 3000) < 4 * 3000**0.5
    assert a.prompt_tokens.max() <= 8192 and a.output_tokens.max() <= 2048


@pytest.mark.parametrize(
    "cfg",
    [
        {"generator": "gamma", "rate_per_s": 2.0, "cv": 3.0, "duration_s": 300.0},
        {"generator": "diurnal", "rate_per_s": 2.0, "duration_s": 3600.0, "peak_hour": 1.0},
        {
            "generator": "mmpp",
            "rates_per_s": [2.0, 20.0],
            "dwell_s": [60.0, 10.0],
            "duration_s": 300.0,
        },  # fmt: skip
    ],
)
def test_each_generator_builds(cfg):
    w = build({**cfg, "lengths_from": "builtin:azure2023_conv"})
    assert len(w) > 0
    assert w.output_tokens.max() <= 1000  # conv outputs are capped at 1,000 (SOURCES.md)


def test_fixed_lengths_and_transform_order():
    cfg = {
        "generator": "poisson",
        "rate_per_s": 10.0,
        "duration_s": 1000.0,
        "prompt_tokens": {"dist": "fixed", "value": 512},
        "output_tokens": {"dist": "fixed", "value": 64},
        "window_s": [0.0, 500.0],
        "time_stretch": 2.0,
        "max_requests": 100,
    }
    w = build(cfg)
    assert len(w) == 100
    assert set(w.prompt_tokens.tolist()) == {512} and set(w.output_tokens.tolist()) == {64}
    # window then stretch: ~5,000 requests over 1,000 s; the first 100 span ~20 s, not ~10 s.
    assert 14.0 < w.duration_s < 26.0
    assert w.meta["transforms"][0] == "window(0, 500)"


def test_tile_and_sample():
    cfg = {"trace": "builtin:azure2023_code", "tile_to_s": 7200.0, "peak_to_trough": 2.0,
           "sample_frac": 0.5}  # fmt: skip
    w = build(cfg)
    assert w.duration_s < 7200.0 and w.duration_s > 3600.0
    assert [t.split("(")[0] for t in w.meta["transforms"]] == ["tile_diurnal", "sample"]


@pytest.mark.parametrize(
    "cfg, field, reason",
    [
        ({"trace": "builtin:azure2023_conv", "rate": 2}, "workload.rate", "unknown key"),
        ({}, "workload", "exactly one of `trace` or `generator`"),
        ({"trace": "builtin:azure2023_conv", "generator": "poisson"}, "workload", "exactly one"),
        ({"generator": "weibull"}, "workload.generator", "must be one of poisson, gamma"),
        ({"generator": "poisson", "rate_per_s": 1, "duration_s": 10, "cv": 2, **LOGNORMAL},
         "workload.cv", "does not apply to generator 'poisson'"),
        ({"generator": "poisson", "rate_per_s": -1, "duration_s": 10, **LOGNORMAL},
         "workload.rate_per_s", "must be >= 1e-06"),
        ({"generator": "poisson", "rate_per_s": "fast", "duration_s": 10, **LOGNORMAL},
         "workload.rate_per_s", "expected a number"),
        ({"generator": "poisson", "duration_s": 10, **LOGNORMAL}, "workload.rate_per_s",
         "required for generator 'poisson'"),
        ({"generator": "poisson", "rate_per_s": 1, "duration_s": 10}, "workload.prompt_tokens",
         "required for a generator"),
        ({"generator": "poisson", "rate_per_s": 1, "duration_s": 10, **LOGNORMAL,
          "lengths_from": "builtin:azure2023_conv"}, "workload.prompt_tokens", "either"),
        ({"generator": "poisson", "rate_per_s": 1, "duration_s": 10,
          "prompt_tokens": {"median": 100, "sigma": -1}, "output_tokens": {"dist": "fixed", "value": 5}},
         "workload.prompt_tokens.sigma", "must be >= 0"),
        ({"generator": "poisson", "rate_per_s": 1, "duration_s": 10,
          "prompt_tokens": {"dist": "zipf"}, "output_tokens": {"dist": "fixed", "value": 5}},
         "workload.prompt_tokens.dist", "must be one of lognormal, const, fixed"),
        ({"generator": "mmpp", "rates_per_s": [1.0, 2.0], "dwell_s": [5.0], "duration_s": 10,
          **LOGNORMAL}, "workload.dwell_s", "must have 2 entries"),
        ({"trace": "builtin:nope"}, "workload.trace", "unknown builtin trace"),
        ({"trace": "missing.csv"}, "workload.trace", "trace file not found"),
        ({"trace": "builtin:azure2023_conv", "format": "sharegpt"}, "workload.format", "must be one of"),
        ({"trace": "builtin:azure2023_conv", "window_s": [10.0, 5.0]}, "workload.window_s",
         "start < end"),
        ({"trace": "builtin:azure2023_conv", "window_s": [5000.0, 6000.0]}, "workload",
         "no requests left"),
        ({"trace": "builtin:azure2023_conv", "sample_frac": 2.0}, "workload.sample_frac",
         "must be <= 1"),
        ({"trace": "builtin:azure2023_conv", "max_requests": 2.5}, "workload.max_requests",
         "expected an integer"),
        ({"trace": "builtin:azure2023_conv", "peak_hour": 3.0}, "workload.peak_hour",
         "does not apply to a `trace`"),
    ],
)  # fmt: skip
def test_bad_tables_name_source_and_key(cfg, field, reason):
    with pytest.raises(InputError) as info:
        build(cfg)
    assert info.value.source == SOURCE
    assert info.value.field == field
    assert reason in info.value.reason


def test_errors_inside_a_trace_name_the_trace_file(tmp_path):
    (tmp_path / "t.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.1,x,5\n")  # fmt: skip
    with pytest.raises(InputError) as info:
        build({"trace": "t.csv"}, base_dir=tmp_path)
    assert info.value.source == str(tmp_path / "t.csv") and info.value.line == 2


def test_same_seed_same_workload_through_every_random_step():
    cfg = {"trace": "builtin:azure2023_code", "rate_scale": 1.7, "tile_to_s": 7200.0,
           "sample_frac": 0.8}  # fmt: skip
    a, b, c = build(cfg, seed=5), build(cfg, seed=5), build(cfg, seed=6)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    np.testing.assert_array_equal(a.prompt_tokens, b.prompt_tokens)
    assert len(a) != len(c) or not np.array_equal(a.arrival_s, c.arrival_s)


def test_impossible_tiling_is_an_input_error():
    cfg = {"generator": "poisson", "rate_per_s": 1.0, "duration_s": 1.0, "max_requests": 1,
           "prompt_tokens": {"dist": "fixed", "value": 5},
           "output_tokens": {"dist": "fixed", "value": 5}, "tile_to_s": 3e8}  # fmt: skip
    with pytest.raises(InputError) as info:
        build(cfg, seed=1)
    assert info.value.field == "workload.tile_to_s" and "must be <=" in info.value.reason
