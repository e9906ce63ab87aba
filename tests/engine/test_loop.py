"""`sim.engine.loop.Environment.run` inlines SimPy's `step`: it must process the same events in the
same order and stop the same way as `simpy.Environment.run`."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine.loop import Environment


def _trace(env_cls, until_kind: str) -> tuple[list[tuple[float, str]], object]:
    """A small M/M/2 queue with an interrupt; returns (event log, run's return value)."""
    env = env_cls()
    rng = np.random.default_rng(7)
    servers = simpy.Resource(env, capacity=2)
    log: list[tuple[float, str]] = []

    def customer(k: int, service_s: float):
        with servers.request() as req:
            yield req
            log.append((env.now, f"start {k}"))
            try:
                yield env.timeout(service_s)
                log.append((env.now, f"end {k}"))
            except simpy.Interrupt:
                log.append((env.now, f"cut {k}"))

    def source():
        procs = []
        for k, gap in enumerate(rng.exponential(0.5, 40).tolist()):
            yield env.timeout(gap)
            procs.append(env.process(customer(k, float(rng.exponential(0.9)))))
            if k == 20 and procs[18].is_alive:
                procs[18].interrupt()
        return "source done"

    src = env.process(source())
    if until_kind == "none":
        value = env.run()
    elif until_kind == "time":
        value = env.run(until=7.5)
    else:
        value = env.run(until=src)
    return log, value


@pytest.mark.parametrize("until_kind", ["none", "time", "event"])
def test_same_events_same_order_as_simpy(until_kind):
    expected = _trace(simpy.Environment, until_kind)
    got = _trace(Environment, until_kind)
    assert got == expected
    assert len(got[0]) > 10  # the model did run (guards against an empty comparison)


def test_until_event_never_triggered_raises_like_simpy():
    for env_cls in (simpy.Environment, Environment):
        env = env_cls()
        env.timeout(1.0)
        with pytest.raises(RuntimeError, match="No scheduled events left"):
            env.run(until=env.event())


def test_until_in_the_past_is_rejected():
    env = Environment()
    env.run(until=2.0)
    assert env.now == 2.0
    with pytest.raises(ValueError):
        env.run(until=1.0)


def test_failed_event_crashes_the_run():
    env = Environment()
    env.event().fail(KeyError("boom"))
    with pytest.raises(KeyError):
        env.run()
