"""Discrete-event simulation of serving fleets: replica engines, routers, autoscalers, costs."""
