"""The shipped validation set: what it covers, where every row comes from, and held-out accuracy
of the shipped engine profiles on it (regression guard at the level docs/calibration.md quotes)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.perf.engines import profile_document
from sim.perf.replay import read_validation_set
from sim.perf.validate import VALIDATION_SET, evaluate

DATA = Path(__file__).resolve().parents[1] / "data" / "serving"
ROWS = list(csv.DictReader((DATA / "measurements.csv").open()))
SOURCES = {r["source_id"]: r for r in csv.DictReader((DATA / "sources.csv").open())}
RESERVED = ("lambdalabsml", "vllm-benchmark", "vidur")


def test_coverage():
    assert len(ROWS) >= 30
    assert len({r["gpu"] for r in ROWS}) >= 3
    assert {int(r["tp"]) for r in ROWS} >= {1, 2, 4, 8}
    assert len({r["engine"] for r in ROWS}) >= 2
    models = {r["model"] for r in ROWS}
    assert "qwen3-235b-a22b" in models and "llama-3.1-8b" in models  # MoE and dense


def test_every_row_is_sourced_and_none_is_reserved():
    for row in ROWS:
        src = SOURCES[row["source_id"]]
        assert src["url"] and src["published"] and src["date_flag"] and src["licence"]
        assert row["split"] in ("fit", "holdout")
        text = " ".join(row.values()).lower() + " " + src["url"].lower()
        assert not any(r in text for r in RESERVED)
    assert sum(r["split"] == "holdout" for r in ROWS) >= 30


def test_fitted_profiles_never_saw_their_held_out_runs():
    for name in ("vllm-0.6", "vllm-v1", "sglang", "trtllm"):
        meta = profile_document(name)["profile"]
        held = set(meta["held_out"])
        assert held and not held & set(meta["fitted_on"])
        split = {r["run_id"]: r["split"] for r in ROWS}
        assert all(split[label] == "holdout" for label in held)


@pytest.mark.slow
def test_held_out_error_stays_where_docs_quote_it():
    # A sample of held-out runs across engines (the full table: python -m sim.perf.validate).
    runs = [r for r in read_validation_set(VALIDATION_SET, 1500) if r.setup["split"] == "holdout"]
    sample = runs[::3]
    errs = [e for _run, _sim, e in evaluate(sample)]
    thr = sorted(abs(e["output_throughput"]) for e in errs if "output_throughput" in e)
    tpot = sorted(abs(e["median_tpot_ms"]) for e in errs if "median_tpot_ms" in e)
    assert thr[len(thr) // 2] <= 0.25
    assert tpot and tpot[len(tpot) // 2] <= 0.25
