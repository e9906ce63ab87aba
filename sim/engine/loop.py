"""The SimPy environment the GPU fleets run in: SimPy's own, with `run` stepping through events in
one loop instead of one `step()` call per event (the same events, in the same order)."""

from __future__ import annotations

from heapq import heappop

import simpy
from simpy.core import StopSimulation
from simpy.events import URGENT, Event


class Environment(simpy.Environment):
    """`simpy.Environment` whose `run` inlines `step`: popping an event and calling its callbacks
    is most of the cost of a cheap event, and a method call per event is a large share of that."""

    def run(self, until=None):
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time"
                    )
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        queue = self._queue
        try:
            while queue:
                self._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    try:
                        callback(event)
                    except StopSimulation:
                        # As in `step`: the rest of the callbacks run if the run is resumed.
                        event.callbacks = callbacks[callbacks.index(callback) + 1 :]
                        self.schedule(event, -1)
                        raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except StopSimulation as exc:
            return exc.args[0]
        if until is not None:
            assert not until.triggered
            raise RuntimeError(
                f'No scheduled events left but "until" event was not triggered: {until}'
            )
        return None
