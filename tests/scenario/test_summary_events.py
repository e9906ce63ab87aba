"""The typed events, utilisation and SLO-window figures of a summary: how replications combine,
and the JSON round trip."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sim.summary import FleetEvents, Slo, SloWindows, Utilisation
from sim.summary.build import slo_windows, window_misses


def test_events_average_over_replications_and_keep_not_applicable_as_none():
    reps = [
        {"scale_up": 2, "preemptions": 10, "recomputes_max_per_request": 3, "throttled": None},
        {"scale_up": 5, "preemptions": 0, "recomputes_max_per_request": 7, "throttled": None},
    ]
    ev = FleetEvents.over_replications(reps)
    assert ev.scale_up == 3.5 and ev.preemptions == 5.0
    assert ev.recomputes_max_per_request == 7.0  # the largest, not a mean
    assert ev.throttled is None and ev.cold_start_wait_s_p99 is None
    assert FleetEvents.from_json(ev.to_json()) == ev


def test_cold_start_wait_is_averaged_over_replications_that_had_one():
    ev = FleetEvents.over_replications(
        [{"cold_start_wait_s_p99": 90.0}, {"cold_start_wait_s_p99": None}]
    )
    assert ev.cold_start_wait_s_p99 == 90.0


def test_utilisation_round_trip():
    u = Utilisation.over_replications(
        [{"busy_fraction": 0.8, "batch_occupancy": 0.1}, {"busy_fraction": 0.6}]
    )
    assert u.busy_fraction == pytest.approx(0.7) and u.batch_occupancy == 0.1
    assert Utilisation.from_json(u.to_json()) == u
    assert Utilisation.from_json(None) is None


def _ts(ttft, tpot, completions):
    n = len(ttft)
    return pl.DataFrame(
        {
            "window_start_s": np.arange(n) * 60.0,
            "window_end_s": np.arange(1, n + 1) * 60.0,
            "completions": completions,
            "ttft_p99_s": ttft,
            "tpot_p99_s": tpot,
        }
    )


def test_windows_miss_on_any_named_percentile_and_only_with_completions():
    slo = Slo({"ttft_p99_s": 2.0, "tpot_p99_s": 0.1, "e2e_p95_s": 10.0})
    ts = _ts(
        ttft=[1.0, 3.0, 1.0, np.nan, 9.0],
        tpot=[0.05, 0.05, 0.2, np.nan, 0.05],
        completions=[4, 2, 1, 0, 0],  # the last window's 9 s is stale: nothing finished in it
    )
    assert window_misses(ts, slo) == (2, 3)
    both = slo_windows([ts, _ts([1.0] * 5, [0.05] * 5, [1] * 5)], slo)
    assert both == SloWindows(missed=1.0, judged=4.0, windows=5.0, window_s=60.0)
    assert both.text() == "SLO missed in 1 of 4 windows"
    assert SloWindows.from_json(both.to_json()) == both


def test_no_latency_target_no_window_verdict():
    assert slo_windows([_ts([1.0], [0.1], [1])], Slo({})) is None


def _console_text(summary) -> str:
    from rich.console import Console

    from sim.cli.run_cmd import CONSOLE_WIDTH, fleet_lines, summary_table

    console = Console(width=CONSOLE_WIDTH, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(summary_table(summary))
    for line in fleet_lines(summary):
        console.print(line, markup=False)
    return console.export_text()


def test_console_flags_windows_that_broke_the_slo_and_lists_what_happened():
    from sim.summary import RunSummary

    fleet = {
        "name": "cloud-a",
        "kind": "cloud",
        "total_cost_usd": {"mean": 4.2},
        "success_rate": {"mean": 1.0},
        "ttft_s": {"p99": {"mean": 1.0}},
        "meets_slo": True,
        "events": {"scale_up": 3.0, "cold_starts": 3.0, "preemptions": 0.0, "throttled": None},
        "utilisation": {
            "busy_fraction": 0.86,
            "batch_occupancy": 0.08,
            "kv_occupancy": 0.05,
            "output_tokens_per_s": 100.0,
            "capacity_output_tokens_per_s": 1000.0,
        },
        "slo_windows": {"missed": 7.0, "judged": 60.0, "windows": 60.0, "window_s": 60.0},
    }
    quiet = dict(fleet, name="own-b", kind="self_hosted", events={}, utilisation=None)
    quiet["slo_windows"] = {"missed": 0.0, "judged": 60.0, "windows": 60.0}
    summary = RunSummary.from_json(
        {"scenario": "s", "slo": {"ttft_p99_s": 2.0}, "fleets": [fleet, quiet]}
    )
    text = _console_text(summary)
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "7 of 60" in rows["cloud-a"] and "0 of 60" in rows["own-b"]
    assert (
        "utilisation: cloud-a: busy 86%, batch 8%, KV 5%, 100 of 1,000 output tok/s (10%)" in text
    )
    assert "events: cloud-a: scale-ups 3, cold starts 3" in text  # zeros and None left out
    assert "events: own-b" not in text and "utilisation: own-b" not in text


def test_warehouse_rows_carry_events_and_leave_out_what_does_not_apply():
    from sim.outputs.record import summaries_long
    from sim.summary import RunSummary

    summary = RunSummary.from_json(
        {
            "scenario": "s",
            "fleets": [
                {
                    "name": "api",
                    "kind": "api",
                    "events": {"throttled": 12.0, "retries": 10.0, "scale_up": None},
                    "slo_windows": {"missed": 2.0, "judged": 5.0, "windows": 6.0},
                }
            ],
        }
    )
    rows = dict(summaries_long(summary).select("metric", "value").rows())
    assert rows["events_throttled"] == 12.0 and rows["events_retries"] == 10.0
    assert rows["slo_windows_missed"] == 2.0
    assert "events_scale_up" not in rows and not any(k.startswith("utilisation_") for k in rows)


def test_flat_price_histories_go_to_a_table():
    import datetime as dt

    from sim.report.html import _flat, _flat_price_rows

    day = dt.datetime(2025, 1, 1)
    flat = pl.DataFrame(
        {
            "valid_from": [day, day + dt.timedelta(days=30)],
            "price": [2.0, 2.0],
            "unit": ["usd_per_hour"] * 2,
            "source": ["x"] * 2,
        }  # fmt: skip
    )
    moved = flat.with_columns(pl.Series("price", [2.0, 1.5]))
    assert _flat(flat) and not _flat(moved)
    assert _flat_price_rows([("f: sku", flat)]) == [
        ["f: sku", "usd_per_hour", "2", "2025-01-01", "x"]
    ]


def test_cached_input_note_only_when_the_traffic_has_cached_tokens():
    from sim.summary import RunSummary

    note = {"note": "source has no cached-input price: cached input priced as input", "note_when": "cached_tokens"}  # fmt: skip
    other = {"note": "something else"}

    def notes(cached):
        return RunSummary.from_json(
            {
                "scenario": "s",
                "workload": {"cached_prompt_tokens": {"mean": cached}},
                "fleets": [{"name": "api", "prices": note}, {"name": "b", "prices": other}],
            }
        ).notes()

    assert notes(0.0) == [("b", "something else")]
    assert [n for n, _ in notes(1200.0)] == ["api", "b"]
    assert [n for n, _ in notes(None)] == ["api", "b"]  # unknown (an old summary): say it


def test_console_says_what_prompt_caches_did_only_when_they_did_something():
    from sim.summary import RunSummary

    base = {
        "total_cost_usd": {"mean": 1.0},
        "success_rate": {"mean": 1.0},
        "meets_slo": True,
    }
    cached = {
        **base,
        "name": "own-cached",
        "kind": "self_hosted",
        "prefix_hit_rate_tokens": {"mean": 0.847},
        "prefix_hit_rate_requests": {"mean": 1.0},
        "prefix_evictions": {"mean": 354000.0},
        "prefix_gpu_s_saved": {"mean": 9600.0},
    }
    cold = {**cached, "name": "own-cold", "prefix_hit_rate_tokens": {"mean": 0.0}}
    cold["prefix_evictions"] = {"mean": 0.0}
    api = {
        **base,
        "name": "api",
        "kind": "api",
        "cached_input_tokens": {"mean": 34.5e6},
        "cache_write_tokens": {"mean": 5.63e6},
    }
    summary = RunSummary.from_json(
        {"scenario": "s", "slo": {"ttft_p99_s": 2.0}, "fleets": [cached, cold, api]}
    )
    text = _console_text(summary)
    assert (
        "prefix cache: own-cached: 85% of prompt tokens and 100% of requests hit, "
        "354,000 blocks evicted, 9,600 prefill GPU-s saved" in text
    )
    assert "own-cold" not in text.split("┘")[-1]  # in the table, not in the cache lines
    assert "prompt cache: api: 34.5M input tokens billed as cached, 5.63M as cache writes" in text
    from sim.report.html import _cache_rows

    rows = _cache_rows(summary)  # the report's Prompt caches table: the same fleets
    assert [r["name"] for r in rows] == ["own-cached", "api"]
    assert rows[0]["cells"][0] == "84.70%" and rows[1]["cells"][-1] == "5,630,000"


def test_disaggregated_pools_reach_every_output():
    """A disaggregated fleet's pools and KV link: averaged over replications from each run's
    meta, kept through the JSON round trip, on the console, in the report and the warehouse."""
    from sim.outputs.record import summaries_long
    from sim.report.html import _pool_rows
    from sim.summary import RunSummary
    from sim.summary.build import _disaggregation

    def meta(busy, cost, transfers):
        pool = {"gpu": "h100-sxm", "tp": 4, "replicas_launched": 2, "kv_capacity_tokens": 1e5}
        return {
            "pools": {
                "prefill": {**pool, "gpu_util": busy, "cost_usd": cost},
                "decode": {**pool, "gpu": "a100-80gb", "gpu_util": 0.99, "cost_usd": 1.0},
            },
            "kv_link": {
                "kind": "infiniband",
                "gbps": 200.0,
                "latency_s": 1e-4,
                "transfers": transfers,
                "mean_transfer_s": 0.002,
            },
        }

    parts = _disaggregation([meta(0.3, 2.0, 100), meta(0.5, 4.0, 300)])
    prefill = parts["pools"]["prefill"]
    assert prefill.busy_fraction == pytest.approx(0.4) and prefill.cost_usd.mean == 3.0
    assert prefill.cost_usd.ci95 is not None and parts["kv_link"].transfers == 200.0
    assert _disaggregation([{"utilisation": {}}]) == {}  # not disaggregated: nothing

    fleet = {
        "name": "dis",
        "kind": "cloud",
        "total_cost_usd": {"mean": 4.0},
        "success_rate": {"mean": 1.0},
        "meets_slo": True,
        "pools": {k: v.to_json() for k, v in parts["pools"].items()},
        "kv_link": parts["kv_link"].to_json(),
    }
    summary = RunSummary.from_json({"scenario": "s", "slo": {"ttft_p99_s": 2.0}, "fleets": [fleet]})
    assert summary.fleets[0].pools["prefill"] == prefill
    assert RunSummary.from_json(summary.to_json()).to_json() == summary.to_json()
    text = _console_text(summary)
    assert (
        "pools: dis: prefill 2 x h100-sxm tp4 busy 40%, $3.00; decode 2 x a100-80gb tp4 busy "
        "99%, $1.00; KV link infiniband 200 GB/s: 200 transfers, mean 2.00 ms"
    ) in " ".join(text.split())
    rows = _pool_rows(summary)
    assert [r["cells"][0] for r in rows] == ["prefill", "decode"]
    assert "200 x" in rows[0]["cells"][-1] and rows[1]["cells"][-1] == ""
    stored = dict(zip(*summaries_long(summary).select("metric", "value"), strict=True))
    assert stored["pool_prefill_busy_fraction"] == pytest.approx(0.4)
    assert stored["pool_decode_cost_usd"] == 1.0 and stored["kv_link_transfers"] == 200.0
