"""Discrete-event simulation of serving fleets: replica engines, routers, autoscalers, costs."""

from sim.engine.simulate import DRAIN_LIMIT_S, simulate_fleet
from sim.engine.streaming import StreamResult, simulate_fleet_streaming

__all__ = ["DRAIN_LIMIT_S", "StreamResult", "simulate_fleet", "simulate_fleet_streaming"]
