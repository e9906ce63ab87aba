"""Too many accounting windows are refused before anything is allocated (issue 15)."""

from __future__ import annotations

import pytest

from sim.engine.accounting import MAX_WINDOWS, WindowSums, check_window_count, window_edges
from sim.errors import InputError


@pytest.mark.parametrize(
    ("end_s", "window_s"),
    [(3600.0, 1e-6), (1.0, 1e-300), (1e308, 60.0), (float("inf"), 60.0), (60.0, 0.0)],
)
def test_absurd_window_counts_are_input_errors(end_s, window_s):
    with pytest.raises(InputError, match="window_s"):
        window_edges(end_s, window_s)


def test_window_sums_refuse_before_spreading():
    sums = WindowSums(1e-300)
    with pytest.raises(InputError, match="over the limit"):
        sums.add_intervals([0.0], [1.0])


def test_limit_itself_is_allowed():
    assert check_window_count(MAX_WINDOWS * 60.0, 60.0) == MAX_WINDOWS
    assert len(window_edges(3600.0, 60.0)) == 61
