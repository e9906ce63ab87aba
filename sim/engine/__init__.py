"""Discrete-event simulation of serving fleets: replica engines, routers, autoscalers, costs."""

from sim.engine.simulate import DRAIN_LIMIT_S, simulate_fleet

__all__ = ["DRAIN_LIMIT_S", "simulate_fleet"]
