"""Replications, summaries and the run directory, on a stand-in simulator (scenario_fakes)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario_fakes import FAKE_BACKEND, fake_build_workload

from sim.engine.result import FAILED, OK, FleetResult
from sim.outputs import bands_frame, make_run_dir, timeseries_frame
from sim.run import run_replications, run_scenario
from sim.scenario import load_scenario
from sim.stats import mean_ci, t95
from sim.summary import Slo, replication_figures
from sim.summary import summarize as summarize_typed
from sim.traffic.spec import WorkloadSpec


def summarize(*args, **kwargs) -> dict:
    """The summary as summary.json holds it (the layout readers of run directories rely on)."""
    return summarize_typed(*args, **kwargs).to_json()


def _summary_figures(summary):
    return [
        (f["name"], f["total_cost_usd"]["values"], f["ttft_s"]["p99"]["mean"])
        for f in summary["fleets"]
    ]


def test_same_seed_same_results_and_other_seed_differs(small_toml):
    sc = load_scenario(small_toml)
    a = summarize(sc, run_replications(sc, n=2, seed=5, backend=FAKE_BACKEND), seed=5)
    b = summarize(sc, run_replications(sc, n=2, seed=5, backend=FAKE_BACKEND), seed=5)
    c = summarize(sc, run_replications(sc, n=2, seed=6, backend=FAKE_BACKEND), seed=6)
    assert json.dumps(a) == json.dumps(b)
    assert _summary_figures(a) != _summary_figures(c)


def test_serial_and_parallel_replications_are_identical(small_toml):
    sc = load_scenario(small_toml)
    serial = run_replications(sc, n=3, seed=11, workers=1, backend=FAKE_BACKEND)
    parallel = run_replications(sc, n=3, seed=11, workers=2, backend=FAKE_BACKEND)
    assert [r.replication for r in parallel] == [0, 1, 2]
    for rs, rp in zip(serial, parallel, strict=True):
        for fs, fp in zip(rs.fleets, rp.fleets, strict=True):
            np.testing.assert_array_equal(fs.finish_s, fp.finish_s)
            np.testing.assert_array_equal(fs.cost_usd, fp.cost_usd)
            assert fs.timeseries.equals(fp.timeseries, null_equal=True)
    assert json.dumps(summarize(sc, serial)) == json.dumps(summarize(sc, parallel))


def test_fleets_share_the_workload_and_replications_differ(small_toml):
    sc = load_scenario(small_toml)
    reps = run_replications(sc, n=2, seed=1, backend=FAKE_BACKEND)
    api, cloud, own = reps[0].fleets
    # common random numbers: every fleet sees the very same requests
    np.testing.assert_array_equal(api.arrival_s, cloud.arrival_s)
    np.testing.assert_array_equal(api.output_tokens, own.output_tokens)
    # ... but fleets draw their own latencies, and replications their own workloads
    assert not np.array_equal(api.first_token_s, cloud.first_token_s)
    assert len(reps[0].fleets[0].arrival_s) != len(
        reps[1].fleets[0].arrival_s
    ) or not np.array_equal(reps[0].fleets[0].arrival_s, reps[1].fleets[0].arrival_s)


def test_t_table_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 29, 30, 31, 40, 100, 1000):
        assert t95(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-3)


def test_mean_ci_on_known_values():
    # values 1, 2, 3: mean 2, s = 1, half-width = t(2) / sqrt(3) = 4.303 / 1.732 = 2.484
    mean, ci, values = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and values == (1.0, 2.0, 3.0)
    assert ci == pytest.approx([2 - 2.4843, 2 + 2.4843], abs=1e-3)
    assert mean_ci([5.0])[1] is None
    assert mean_ci([math.nan, 4.0, 6.0])[0] == 5.0


def _fleet(ttft, e2e, status, cost=10.0, out_tokens=None) -> FleetResult:
    n = len(ttft)
    arrival = np.zeros(n)
    out = np.full(n, 101) if out_tokens is None else np.asarray(out_tokens)
    return FleetResult(
        name="f", kind="api", arrival_s=arrival, start_s=arrival, first_token_s=np.asarray(ttft, float),
        finish_s=np.asarray(e2e, float), prompt_tokens=np.full(n, 10), output_tokens=out,
        status=np.asarray(status, np.int8), attempts=np.ones(n, np.int16), cost_usd=np.full(n, cost / n),
        timeseries=pl.DataFrame(), total_cost_usd=cost,
    )  # fmt: skip


def test_replication_figures_by_hand():
    # 4 requests, one failed; SLO ttft <= 1 s: requests 0 and 1 meet it, 2 is too slow, 3 failed.
    fr = _fleet(
        ttft=[0.5, 1.0, 3.0, np.nan], e2e=[2.5, 3.0, 5.0, np.nan], status=[OK, OK, OK, FAILED]
    )
    fig = replication_figures(fr, Slo(targets_s={"ttft_p99_s": 1.0}))
    assert fig["ok"] == 3 and fig["failed"] == 1 and fig["success_rate"] == 0.75
    assert fig["attainment:ttft_p99_s"] == 0.5
    assert fig["slo_attainment"] == 0.5
    # 10 USD over 3 ok requests x 101 output tokens
    assert fig["usd_per_mtok_output"] == pytest.approx(10 / (303 / 1e6))
    assert fig["usd_per_1k_requests"] == pytest.approx(10 / 3 * 1000)
    assert fig["ttft_p50_s"] == 1.0  # median of 0.5, 1.0, 3.0
    # tpot: (finish - first token) / 100 tokens = 2 s / 100
    assert fig["tpot_p50_s"] == pytest.approx(0.02)


def test_meets_slo_and_cheapest(small_toml):
    # The fake's TTFT is exponential with mean 0.3 s, so its p99 is about 0.3 x ln(100) = 1.4 s:
    # a 100 s target is met by all, a 0.01 s target by none, whatever the costs.
    sc = load_scenario(small_toml, ["slo.ttft_p99_s=100.0", "slo.min_success_rate=0.5"])
    summary = summarize(sc, run_replications(sc, n=2, seed=3, backend=FAKE_BACKEND))
    assert all(f["meets_slo"] for f in summary["fleets"])
    # Costs by hand from the fake's rules: the API bills 0.88 USD/Mtok on about 1,200 requests x
    # (500 prompt + 100 output) tokens (geometric means) = 0.63 USD; GPU fleets bill by time until
    # the last request finishes (~600 s + a few s of decode): cloud 98.32 USD/h -> 16.5 USD, the
    # fake's self-hosted 10 USD/h -> 1.68 USD.
    costs = {f["name"]: f["total_cost_usd"]["mean"] for f in summary["fleets"]}
    assert costs["api"] == pytest.approx(1200 * 600 * 0.88e-6, rel=0.15)
    assert costs["cloud-h100"] == pytest.approx(98.32 / 3600 * 605, rel=0.02)
    assert costs["own-8xh100"] == pytest.approx(10 / 3600 * 605, rel=0.02)
    assert summary["cheapest_meeting_slo"] == "api"
    tight = load_scenario(small_toml, ["slo.ttft_p99_s=0.01"])
    summary = summarize(tight, run_replications(tight, n=2, seed=3, backend=FAKE_BACKEND))
    assert summary["cheapest_meeting_slo"] is None
    assert not any(f["meets_slo"] for f in summary["fleets"])


def test_slo_rule_and_cheapest_rule_on_constructed_fleets():
    from sim.summary import FleetSummary, Stat, cheapest, meets_slo, slo_failures

    def fleet(name, cost, ttft_p99, tpot_p99, success, verdict=None):
        f = FleetSummary(
            name=name, kind="api", total_cost_usd=Stat(cost), usd_per_mtok_output=Stat(None),
            usd_per_1k_requests=Stat(None), success_rate=Stat(success), slo_attainment=Stat(None),
            slo_attainment_by_target={},
            latency_s={"ttft": {"p99": Stat(ttft_p99)}, "tpot": {"p99": Stat(tpot_p99)}, "e2e": {}},
            meets_slo=False, requests={}, cost_breakdown_usd={},
        )  # fmt: skip
        slo = Slo({"ttft_p99_s": 2.0, "tpot_p99_s": 0.1}, 0.99)
        import dataclasses

        return dataclasses.replace(f, meets_slo=meets_slo(f, slo)), slo

    at_limit, slo = fleet("at-limit", 5.0, 2.0, 0.1, 0.99)  # targets are inclusive
    slow, _ = fleet("slow", 1.0, 2.0001, 0.05, 1.0)
    flaky, _ = fleet("flaky", 2.0, 0.5, 0.05, 0.985)
    unmeasured, _ = fleet("unmeasured", 0.5, None, 0.05, 1.0)  # no TTFT: cannot meet a TTFT target
    assert at_limit.meets_slo and not slow.meets_slo and not flaky.meets_slo
    assert slo_failures(slow, slo) == ["ttft_p99_s"]
    assert slo_failures(flaky, slo) == ["success_rate"]
    assert slo_failures(unmeasured, slo) == ["ttft_p99_s"]
    assert cheapest([slow, flaky, unmeasured, at_limit]) == "at-limit"
    twin, _ = fleet("twin", 5.0, 1.0, 0.05, 1.0)
    assert cheapest([at_limit, twin]) == "at-limit"  # a tie goes to the first
    assert cheapest([slow, flaky]) is None


def test_confidence_interval_shrinks_with_more_replications(small_toml):
    sc = load_scenario(small_toml)

    def width(n):
        summary = summarize(sc, run_replications(sc, n=n, seed=2, backend=FAKE_BACKEND))
        api = summary["fleets"][0]["total_cost_usd"]["ci95"]
        return api[1] - api[0]

    # expected ratio ~ t(3)/t(31) * sqrt(32/4) = 1.6 * 2.83 = 4.5; a factor 2 leaves a wide margin
    assert width(4) > 2 * width(32)


def test_run_scenario_writes_all_outputs_and_records(small_toml, tmp_path):
    from warehouse import Warehouse

    wh = Warehouse(tmp_path / "wh.duckdb", load_snapshot=False)
    sc = load_scenario(small_toml)
    out = run_scenario(
        sc,
        out_dir=tmp_path / "run",
        replications=2,
        workers=1,
        warehouse=wh,
        backend=FAKE_BACKEND,
    )
    names = sorted(p.name for p in out.run_dir.iterdir())
    for expected in (
        "bands.parquet",
        "requests.parquet",
        "scenario.resolved.json",
        "summary.json",
        "timeseries.parquet",
    ):
        assert expected in names
    summary = json.loads((out.run_dir / "summary.json").read_text())
    assert summary["replications"] == 2 and [f["name"] for f in summary["fleets"]] == [
        "api",
        "cloud-h100",
        "own-8xh100",
    ]
    assert summary["fleets"][1]["prices"]["source"] == "scenario"
    requests = pl.read_parquet(out.run_dir / "requests.parquet")
    # every request of every fleet and replication is in the table, and each one's cost share sums
    # to the fleet's total cost
    per = (
        requests.group_by(["replication", "fleet"])
        .agg(pl.len(), pl.col("cost_usd").sum())
        .sort(["replication", "fleet"])
    )
    assert per.height == 6
    api_costs = per.filter(pl.col("fleet") == "api")["cost_usd"].to_list()
    assert api_costs == pytest.approx(summary["fleets"][0]["total_cost_usd"]["values"])
    assert set(requests["status"].cast(pl.String).unique()) <= {
        "ok",
        "failed",
        "dropped",
        "unfinished",
    }
    bands = pl.read_parquet(out.run_dir / "bands.parquet")
    assert {
        "fleet",
        "window_start_s",
        "metric",
        "mean",
        "p5",
        "p50",
        "p95",
        "ci95_lo",
        "ci95_hi",
        "n",
    } <= set(bands.columns)
    row = bands.filter((pl.col("fleet") == "cloud-h100") & (pl.col("metric") == "cost_usd")).row(
        0, named=True
    )
    # cloud at 98.32 USD/h over a 60 s window, the same in every replication
    assert row["mean"] == pytest.approx(98.32 / 60) and row["p5"] == pytest.approx(row["p95"])
    resolved = json.loads((out.run_dir / "scenario.resolved.json").read_text())
    assert resolved["fleets"][0]["price_usd_per_mtok_cached_input"] == 0.88  # defaulted to input
    assert "infercost_version" in resolved
    runs = wh.query("select run_id, scenario from sim_runs")
    assert runs["run_id"].to_list() == [out.run_id] and runs["scenario"].to_list() == ["small"]
    cost = wh.query(
        "select value from sim_summaries where run_id = ? and fleet = 'api' and metric = 'total_cost_usd'",
        [out.run_id],
    )
    assert cost["value"][0] == pytest.approx(summary["fleets"][0]["total_cost_usd"]["mean"])
    assert wh.query("select count(*) as n from sim_timeseries")["n"][0] > 0


def test_same_seed_gives_identical_files(small_toml, tmp_path):
    sc = load_scenario(small_toml)
    outs = [
        run_scenario(
            sc,
            out_dir=tmp_path / f"r{k}",
            replications=2,
            workers=1,
            record=False,
            backend=FAKE_BACKEND,
        )
        for k in (0, 1)
    ]
    for name in ("summary.json", "requests.parquet", "timeseries.parquet", "bands.parquet"):
        assert (outs[0].run_dir / name).read_bytes() == (outs[1].run_dir / name).read_bytes(), name


def test_fake_workload_is_deterministic():
    spec = WorkloadSpec(trace="x.csv", rate_scale=None)
    a = fake_build_workload(spec, base_dir=".", rng=np.random.default_rng(1), source="x")
    b = fake_build_workload(spec, base_dir=".", rng=np.random.default_rng(1), source="x")
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=40))
def test_mean_ci_brackets_the_mean(values):
    mean, ci, cleaned = mean_ci(values)
    assert ci[0] <= mean + 1e-6 * (1 + abs(mean))
    assert mean <= ci[1] + 1e-6 * (1 + abs(mean))
    assert len(cleaned) == len(values)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.05, 3.0))
def test_every_request_is_accounted_for(small_toml, seed, rate):
    # small_toml is only read, so sharing it across examples is safe
    sc = load_scenario(small_toml, [f"workload.rate_per_s={rate}", "scenario.horizon_s=300"])
    summary = summarize(sc, run_replications(sc, n=1, seed=seed, backend=FAKE_BACKEND))
    for f in summary["fleets"]:
        r = f["requests"]
        assert r["ok"] + r["failed"] + r["dropped"] + r["unfinished"] == r["arrivals"]


def test_real_engine_same_seed_same_summary():
    """The real simulator (not the fake) is deterministic under a fixed seed, across processes."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    pins = [
        "workload.max_requests=300",
        "fleet.api-together.price_usd_per_mtok_input=0.88",
        "fleet.api-together.price_usd_per_mtok_output=0.88",
        "fleet.cloud-8xh100.price_usd_per_hour=23.92",
        "fleet.cloud-8xh100.gpus_per_instance=8",
    ]
    sc = load_scenario(repo / "scenarios" / "baseline.toml", pins)
    serial = summarize(sc, run_replications(sc, n=2, seed=9, workers=1))
    parallel = summarize(sc, run_replications(sc, n=2, seed=9, workers=2))
    assert json.dumps(serial) == json.dumps(parallel)
    # the trace is replayed as recorded, but the API's latencies are drawn: replications differ
    lo, hi = serial["fleets"][0]["ttft_s"]["p50"]["ci95"]
    assert hi > lo


def test_band_confidence_narrows_with_more_replications(small_toml):
    """bands.parquet: the CI of each window's mean narrows like 1/sqrt(n); the p5-p95 spread does not."""
    sc = load_scenario(small_toml)

    def band(n):
        reps = run_replications(sc, n=n, seed=4, backend=FAKE_BACKEND)
        b = bands_frame(timeseries_frame(reps))
        b = b.filter(
            (pl.col("fleet") == "api") & (pl.col("metric") == "arrivals") & (pl.col("n") == n)
        )
        return float((b["ci95_hi"] - b["ci95_lo"]).mean()), float((b["p95"] - b["p5"]).mean())

    ci4, spread4 = band(4)
    ci32, spread32 = band(32)
    # Poisson(2/s x 60 s) arrivals per window: CI ratio ~ t(3)/t(31) x sqrt(8) = 4.5; spread ~ equal
    assert ci4 > 2 * ci32
    assert 0.5 < spread32 / spread4 < 2.0


def test_summary_describes_the_workload(small_toml):
    sc = load_scenario(small_toml)
    summary = summarize(sc, run_replications(sc, n=2, seed=1, backend=FAKE_BACKEND))
    assert summary["workload"]["name"] == "fake poisson(2.0/s)"
    # 2 req/s for 600 s: about 1,200 requests per replication
    assert 1000 < summary["workload"]["requests"]["mean"] < 1400


def test_run_ids_differ_for_same_named_folders_in_the_same_second(tmp_path):
    at = dt.datetime(2026, 1, 1, 12, 0, 0)
    _, id_a = make_run_dir("s", tmp_path / "a" / "run", at)
    _, id_b = make_run_dir("s", tmp_path / "b" / "run", at)
    _, id_a2 = make_run_dir("s", tmp_path / "a" / "run", at)
    assert id_a != id_b and id_a == id_a2
