"""`engine_path = "streaming"` through the whole run (issue 13): the same figures as the exact
path on the same scenario and seed — counts and costs equal, latency percentiles within the
sketches' 1% — and requests.parquet holding the rows `--requests` asks for."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from sim.run import run_replications, run_scenario
from sim.scenario import load_scenario
from sim.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
# The week scenario cut to two hours of the code trace at twice its rate, prices pinned.
CUT = [
    "workload.tile_to_s=7200",
    "workload.rate_scale=2",
    "fleet.api-together.price_usd_per_mtok_input=0.18",
    "fleet.api-together.price_usd_per_mtok_output=0.18",
    "fleet.cloud-h100.price_usd_per_hour=23.92",
    "fleet.cloud-h100.gpus_per_instance=8",
]


@pytest.fixture(scope="module")
def both():
    runs = {}
    for path in ("exact", "streaming"):
        sc = load_scenario(
            ROOT / "scenarios" / "week_at_scale.toml", [*CUT, f'scenario.engine_path="{path}"']
        )
        runs[path] = summarize(sc, run_replications(sc, n=1, seed=3, requests="none"), seed=3)
    return runs


def test_streaming_run_matches_the_exact_run(both):
    exact, streamed = both["exact"], both["streaming"]
    assert streamed.workload.requests.mean == exact.workload.requests.mean > 5_000
    assert streamed.workload.duration_s.mean == pytest.approx(exact.workload.duration_s.mean)
    for a, b in zip(exact.fleets, streamed.fleets, strict=True):
        assert a.name == b.name
        assert b.requests == a.requests
        assert b.total_cost_usd.mean == pytest.approx(a.total_cost_usd.mean, rel=1e-9)
        assert b.success_rate.mean == a.success_rate.mean
        for metric in ("ttft", "tpot", "e2e"):
            for q in ("p50", "p99"):
                x, y = a.latency(metric, q), b.latency(metric, q)
                if x is None or math.isnan(x):
                    continue
                assert y == pytest.approx(x, rel=0.011, abs=1e-4), (a.name, metric, q)
        assert b.meets_slo == a.meets_slo
        # Events and utilisation: the same counters on both paths (issue 14).
        assert b.events == a.events, a.name
        if a.utilisation is None:
            assert b.utilisation is None
        else:
            for key, x in a.utilisation.to_json().items():
                y = getattr(b.utilisation, key)
                assert (y is None) if x is None else y == pytest.approx(x, rel=1e-9), key
        # Prompt-cache tokens billed by the API fleet: counted on both paths alike.
        assert b.api_cache == a.api_cache
        assert (a.api_cache is not None) == (a.kind == "api")
        # Per-window percentiles come from sketches: a window at the limit may flip.
        assert b.slo_windows.judged == a.slo_windows.judged
        assert abs(b.slo_windows.missed - a.slo_windows.missed) <= 1
    assert streamed.workload.cached_prompt_tokens.mean == exact.workload.cached_prompt_tokens.mean


def test_streaming_run_writes_the_asked_rows(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "week_at_scale.toml", CUT)
    assert sc.engine_path == "streaming"
    out = run_scenario(
        sc,
        out_dir=tmp_path / "run",
        replications=1,
        record=False,
        robust=False,
        requests="sample:500",
    )
    rows = pl.read_parquet(out.paths["requests"])
    assert rows.group_by("fleet").len()["len"].to_list() == [500, 500, 500]
    meta = pq.read_schema(out.paths["requests"]).metadata
    assert meta[b"infercost.requests"].startswith(b"sample:500")
    ts = pl.read_parquet(out.paths["timeseries"])
    assert ts["arrivals"].sum() == 3 * out.summary.workload.requests.mean


def test_exact_run_keeps_a_sample_of_its_rows(tmp_path):
    sc = load_scenario(
        ROOT / "scenarios" / "week_at_scale.toml", [*CUT, 'scenario.engine_path="exact"']
    )
    kw = {"replications": 1, "record": False, "robust": False}
    full = run_scenario(sc, out_dir=tmp_path / "all", requests="all", **kw)
    part = run_scenario(sc, out_dir=tmp_path / "some", requests="sample:300", **kw)
    every, some = pl.read_parquet(full.paths["requests"]), pl.read_parquet(part.paths["requests"])
    assert some.group_by("fleet").len()["len"].to_list() == [300, 300, 300]
    assert some.join(every, on=list(every.columns), how="anti").height == 0  # rows of the run
    assert (
        pq.read_schema(part.paths["requests"])
        .metadata[b"infercost.requests"]
        .startswith(b"sample:300")
    )
    assert pq.read_schema(full.paths["requests"]).metadata[b"infercost.requests"] == b"all requests"
    none = run_scenario(sc, out_dir=tmp_path / "none", requests="none", **kw)
    assert "requests" not in none.paths and not (tmp_path / "none" / "requests.parquet").exists()


def test_rate_limited_api_streams_through_the_run():
    """peak.toml's API fleet has rate limits; with a limit that binds, the streaming path
    throttles, retries and fails exactly the requests the exact path does (issue 13)."""
    cut = [
        "workload.max_requests=3000",
        "fleet.api-together.rpm_limit=240",
        "fleet.api-together.max_retries=2",
        "fleet.api-together.price_usd_per_mtok_input=0.88",
        "fleet.api-together.price_usd_per_mtok_output=0.88",
        "fleet.cloud-8xh100.price_usd_per_hour=23.92",
        "fleet.cloud-8xh100.gpus_per_instance=8",
    ]
    runs = {}
    for path in ("exact", "streaming"):
        sc = load_scenario(
            ROOT / "scenarios" / "peak.toml", [*cut, f'scenario.engine_path="{path}"']
        )
        runs[path] = summarize(sc, run_replications(sc, n=1, seed=5, requests="none"), seed=5)
    a = next(f for f in runs["exact"].fleets if f.kind == "api")
    b = next(f for f in runs["streaming"].fleets if f.kind == "api")
    assert a.events.throttled > 100 and a.success_rate.mean < 1.0  # the limit binds
    assert b.events == a.events
    assert b.requests == a.requests
    assert b.success_rate.mean == a.success_rate.mean
    assert b.total_cost_usd.mean == pytest.approx(a.total_cost_usd.mean, rel=1e-9)


PEAK_CUT = [
    "workload.max_requests=3000",
    "fleet.api-together.price_usd_per_mtok_input=0.88",
    "fleet.api-together.price_usd_per_mtok_output=0.88",
    "fleet.cloud-8xh100.price_usd_per_hour=23.92",
    "fleet.cloud-8xh100.gpus_per_instance=8",
]


def test_auto_streams_a_large_run_and_says_why_when_it_cannot(monkeypatch):
    """engine_path = "auto" (the default): streaming above AUTO_STREAMING_REQUESTS requests per
    replication when every fleet can stream (the same figures as engine_path = "streaming"),
    exact below it; above it with a fleet that cannot stream, exact and a warning naming why."""
    import sim.engine.streaming as streaming

    def run(extra):
        sc = load_scenario(ROOT / "scenarios" / "peak.toml", [*PEAK_CUT, *extra])
        return summarize(sc, run_replications(sc, n=1, seed=2, requests="none"), seed=2)

    small = run([])
    assert small.engine_path == "exact" and not small.warnings  # 3,000 <= 2,000,000
    monkeypatch.setattr(streaming, "AUTO_STREAMING_REQUESTS", 1000)
    auto, asked = run([]), run(['scenario.engine_path="streaming"'])
    assert auto.engine_path == asked.engine_path == "streaming"
    assert auto.to_json() == asked.to_json()
    exact = run(['scenario.engine_path="exact"'])
    assert exact.engine_path == "exact" and len(exact.warnings) == 1
    assert "3,000 requests per replication" in exact.warnings[0]
    assert 'engine_path = "exact" asked for' in exact.warnings[0]
    from tests.scenario.test_scenario_golden import CASES  # the golden case: cut, prices pinned

    sc = load_scenario(ROOT / "scenarios" / "disaggregated.toml", CASES["disaggregated"])
    dis = summarize(sc, run_replications(sc, n=1, seed=2, requests="none"), seed=2)
    assert dis.engine_path == "exact"  # a disaggregated fleet cannot stream
    assert "prefill: disaggregated fleet 'disagg-h100-a100' cannot stream" in dis.warnings[0]
