"""Break-even on constructed cases whose crossover is known in closed form."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest
from analysis_fakes import ApiVersusOwned, case_scenario, summary
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.breakeven import breakeven, crossovers, parse_scales, winners
from sim.errors import InputError


@pytest.fixture
def scenario(tmp_path):
    return case_scenario(tmp_path, rate_scale=1.0)


def test_cost_crossover_matches_closed_form(scenario):
    case = ApiVersusOwned(usd_per_request=0.002, usd_per_hour=36.0, base_rps=2.0)
    df = breakeven(
        scenario, parse_scales("0.1..20", 12), seed=1, replications=3, workers=1, evaluate=case
    )
    found = crossovers(df)
    # 36 $/h / (3600 s/h * 0.002 $/request * 2 requests/s) = 2.5x the base traffic.
    assert len(found) == 1
    assert found[0]["from_fleet"] == "api" and found[0]["to_fleet"] == "owned"
    assert found[0]["reason"] == "cost"
    assert found[0]["scale"] == pytest.approx(2.5, rel=1e-9)
    assert found[0]["scale_lo"] < 2.5 < found[0]["scale_hi"]


def test_crossover_interval_from_paired_replications(scenario):
    exact = ApiVersusOwned(noise=0.0, replications=5)
    (crossing,) = crossovers(breakeven(scenario, [1, 2, 4, 8], evaluate=exact))
    # Every replication agrees: the interval collapses onto the 2.5x crossing.
    assert crossing["scale_ci95"] == pytest.approx([2.5, 2.5])
    noisy = ApiVersusOwned(noise=0.2, replications=5)
    (crossing,) = crossovers(breakeven(scenario, [1, 2, 4, 8], evaluate=noisy))
    lo, hi = crossing["scale_ci95"]
    assert crossing["scale"] == pytest.approx(2.5)  # the noise has mean 0: the mean bill is exact
    assert 2.0 <= lo < 2.5 < hi <= 4.0
    more = ApiVersusOwned(noise=0.2, replications=80)
    (narrower,) = crossovers(breakeven(scenario, [1, 2, 4, 8], evaluate=more))
    assert narrower["scale_ci95"][1] - narrower["scale_ci95"][0] < hi - lo  # more replications


def test_scale_multiplies_the_scenarios_own_rate_scale(tmp_path):
    doubled = case_scenario(tmp_path, rate_scale=2.0)
    case = ApiVersusOwned(usd_per_request=0.002, usd_per_hour=36.0, base_rps=2.0)
    df = breakeven(doubled, [0.5, 1.0, 2.0], evaluate=case)
    assert case.calls == [1.0, 2.0, 4.0]
    # Already at 2x, the 2.5x break-even of the base traffic is at a multiplier of 1.25.
    (crossing,) = crossovers(df)
    assert crossing["scale"] == pytest.approx(1.25, rel=1e-9)


def test_set_overrides_change_the_base_scale_and_every_point(tmp_path):
    # --set is applied once, when the scenario is loaded; every point is a typed copy of it.
    loaded = case_scenario(tmp_path, rate_scale=2.0, overrides=["workload.rate_scale=3.0"])
    case = ApiVersusOwned(usd_per_request=0.002, usd_per_hour=36.0, base_rps=2.0)
    breakeven(loaded, [1.0, 2.0], evaluate=case)
    assert case.calls == [3.0, 6.0]


def test_points_are_validated_copies_not_file_reads(tmp_path):
    loaded = case_scenario(tmp_path, rate_scale=1.0)
    loaded.path.unlink()  # the analysis must not need the file again
    case = ApiVersusOwned()
    breakeven(loaded, [1.0, 2.0], evaluate=case)
    assert case.calls == [1.0, 2.0]
    with pytest.raises(InputError, match="rate_scale"):
        breakeven(loaded, [5000.0], evaluate=case)  # 5000x is over the schema's bound


def test_owned_fleet_running_out_of_capacity_hands_back_to_the_api(scenario):
    # Owned fleet meets the SLO up to 20 requests/s = 10x; beyond that only the API does.
    case = ApiVersusOwned(base_rps=2.0, capacity_rps=20.0)
    df = breakeven(scenario, [1, 2, 4, 8, 16], evaluate=case)
    assert winners(df) == [
        (1.0, "api"),
        (2.0, "api"),
        (4.0, "owned"),
        (8.0, "owned"),
        (16.0, "api"),
    ]
    first, second = crossovers(df)
    assert first["reason"] == "cost" and first["scale"] == pytest.approx(2.5)
    assert second["reason"] == "slo" and (second["scale_lo"], second["scale_hi"]) == (8.0, 16.0)
    assert second["scale"] == pytest.approx(math.sqrt(8 * 16))


def test_no_fleet_meeting_the_slo_is_a_verdict_of_none(scenario):
    case = ApiVersusOwned(base_rps=2.0, capacity_rps=20.0)

    def nobody(*args, **kwargs):
        result = case(*args, **kwargs)
        fleets = [dataclasses.replace(f, meets_slo=False) for f in result.fleets]
        return summary(fleets)

    df = breakeven(scenario, [1, 2], evaluate=nobody)
    assert df["cheapest"].to_list() == [False] * 4
    assert crossovers(df) == []


@settings(max_examples=60, deadline=None)
@given(
    usd_per_request=st.floats(1e-4, 1e-1),
    usd_per_hour=st.floats(1.0, 500.0),
    capacity_rps=st.floats(0.5, 500.0),
    points=st.integers(2, 15),
)
def test_crossovers_are_bracketed_and_match_the_verdict_path(
    tmp_path_factory, usd_per_request, usd_per_hour, capacity_rps, points
):
    path = case_scenario(tmp_path_factory.mktemp("case"))
    case = ApiVersusOwned(
        usd_per_request=usd_per_request,
        usd_per_hour=usd_per_hour,
        base_rps=1.0,
        capacity_rps=capacity_rps,
    )
    df = breakeven(path, parse_scales("0.01..100", points), evaluate=case)
    path_ = winners(df)
    changes = [(a, b) for a, b in zip(path_, path_[1:], strict=False) if a[1] != b[1]]
    found = crossovers(df)
    assert len(found) == len(changes)
    for crossing, ((s0, w0), (s1, w1)) in zip(found, changes, strict=True):
        assert (crossing["from_fleet"], crossing["to_fleet"]) == (w0, w1)
        assert s0 <= crossing["scale"] <= s1
    # Every row of one scale shares one verdict.
    assert df.group_by("scale").agg(pl.col("cheapest").sum())["cheapest"].max() <= 1


def test_parse_scales():
    assert parse_scales("0.1..10", 3) == pytest.approx([0.1, 1.0, 10.0])
    assert parse_scales("2,0.5,1,1") == [0.5, 1.0, 2.0]
    for bad in ("10..1", "0..5", "a..b", "1,-2", ""):
        with pytest.raises(InputError):
            parse_scales(bad, 5)
    with pytest.raises(InputError):
        parse_scales("1..2", 1)
