"""The shipped snapshot and its build inputs: dated history, AWS coverage, date quality.

Reads the committed snapshot and scripts/data only (no network, no shared folder).
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
HISTORY = REPO / "scripts" / "data" / "litellm_history"
PERIODS = REPO / "warehouse" / "snapshot" / "periods.parquet"


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "build_snapshot", REPO / "scripts" / "build_snapshot.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def periods() -> pl.DataFrame:
    return pl.read_parquet(PERIODS)


def test_litellm_history_spans_many_dated_releases():
    releases = json.loads((HISTORY / "releases.json").read_text())
    days = sorted({datetime.fromisoformat(m["upload_time"].replace("Z", "+00:00")).date()
                   for m in releases.values()})  # fmt: skip
    assert len(days) >= 12
    assert (days[-1] - days[0]).days >= 18 * 30
    for version, meta in releases.items():
        assert (HISTORY / f"{version}.json.gz").exists(), version
        assert len(meta["sha256"]) == 64 and meta["wheel"].startswith(f"litellm-{version}-")


def test_every_run_reads_a_file_in_the_repo():
    build = _build_module()
    for source, files, _day, quality, _why in build.RUNS + build.litellm_runs():
        for name in files:
            path = build.PRICES / name
            assert path.exists() or path.with_name(path.name + ".gz").exists(), (source, name)
        assert quality in ("exact", "release_date", "approximate")


def test_snapshot_has_aws_gpu_prices_by_term_and_region(periods):
    aws = periods.filter(pl.col("provider") == "aws")
    p5 = aws.filter(pl.col("sku") == "p5.48xlarge")
    assert {"on_demand", "spot"} <= set(p5["term"])
    assert p5["region"].n_unique() >= 10
    families = {sku.split(".")[0] for sku in aws["sku"]}
    assert {
        "p4d",
        "p4de",
        "p5",
        "p5en",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "gr6",
        "inf2",
        "trn1",
    } <= families
    assert "reserved_1y" in set(aws.filter(pl.col("sku") == "p4d.24xlarge")["term"])


def test_snapshot_marks_stand_in_dates(periods):
    quality = dict(
        periods.group_by("source").agg(pl.col("observed_at_quality").unique()).iter_rows()
    )
    assert quality["litellm"] == ["release_date"]
    for source in ("lambda", "vast", "aws_skypilot"):
        assert quality[source] == ["approximate"], source
    assert set(quality["aws_vantage"]) == {"exact"}


def test_the_replay_example_model_has_a_price_on_2025_01_01(periods):
    model = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    rows = periods.filter(
        (pl.col("sku") == model) & (pl.col("valid_from") <= datetime(2025, 1, 1))
        & (pl.col("unit") == "usd_per_mtok_input")
    )  # fmt: skip
    assert not rows.is_empty()
