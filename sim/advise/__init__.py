"""`sim advise`: search every API provider, cloud GPU offer and purchase option in the warehouse
for the cheapest way to serve a scenario's workload within its SLO.

`sim.advise.search.advise` is the entry point; `sim.advise.constraints` holds the `[advise]` table
of the scenario schema (imported by it, so this package imports nothing at load).
"""
