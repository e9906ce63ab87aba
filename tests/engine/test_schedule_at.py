"""`replica.schedule_at`: an event lands at an absolute time through one public
`Environment.schedule` delay: exactly there when at <= 2 now, never before it."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.replica import Due, schedule_at

times = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=200)  # a few ulp steps at most: fast
@given(times, times)
def test_lands_at_the_time_or_the_next_reachable_one(a, b):
    now, at = min(a, b), max(a, b)
    env = simpy.Environment(initial_time=now)
    schedule_at(env, Due(lambda _ev: None), 1, at)
    landed = env.peek()
    assert landed >= at
    if at <= 2 * now or now == 0:
        assert landed == at
