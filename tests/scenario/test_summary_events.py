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
