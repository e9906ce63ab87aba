"""`sim advise`: search every API provider, cloud GPU offer and purchase option in the warehouse
for the cheapest way to serve a scenario's workload within its SLO."""

from sim.advise.constraints import AdviseConstraints, parse_constraints
from sim.advise.search import Advice, advise

__all__ = ["Advice", "AdviseConstraints", "advise", "parse_constraints"]
