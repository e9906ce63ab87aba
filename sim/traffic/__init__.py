"""Traffic for the simulator: recorded traces, synthetic arrival processes and transforms.

Everything returns a `sim.workload.Workload`; scenarios go through `build_workload`.
"""

from sim.traffic.config import build_workload
from sim.traffic.lengths import IndependentLengths, LognormalLengths, ResampleLengths
from sim.traffic.limits import (
    MAX_REQUESTS,
    check_workload_budget,
    estimate_requests,
)
from sim.traffic.loaders import (
    FORMATS,
    builtin_traces,
    check_trace_file,
    detect_format,
    load_trace,
    prefix_cache_hits,
    resolve_trace_path,
)
from sim.traffic.stats import trace_stats
from sim.traffic.synthetic import diurnal, gamma_arrivals, mmpp, poisson
from sim.traffic.transforms import sample, scale_rate, stretch, tile_diurnal, truncate, window

__all__ = [
    "FORMATS",
    "MAX_REQUESTS",
    "IndependentLengths",
    "LognormalLengths",
    "ResampleLengths",
    "build_workload",
    "builtin_traces",
    "check_trace_file",
    "check_workload_budget",
    "detect_format",
    "diurnal",
    "estimate_requests",
    "gamma_arrivals",
    "load_trace",
    "mmpp",
    "poisson",
    "prefix_cache_hits",
    "resolve_trace_path",
    "sample",
    "scale_rate",
    "stretch",
    "tile_diurnal",
    "trace_stats",
    "truncate",
    "window",
]
