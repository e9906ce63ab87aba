"""What a run leaves behind: its directory of files and its record in the warehouse."""

from sim.outputs.record import (
    SUMMARY_SCHEMA,
    no_timeseries,
    record_run,
    summaries_long,
    timeseries_long,
)
from sim.outputs.rundir import (
    BAND_METRICS,
    bands_frame,
    check_out_dir,
    make_run_dir,
    requests_frame,
    resolved_config,
    timeseries_frame,
    write_json,
    write_run,
)

__all__ = [
    "SUMMARY_SCHEMA",
    "no_timeseries",
    "BAND_METRICS",
    "bands_frame",
    "check_out_dir",
    "make_run_dir",
    "record_run",
    "requests_frame",
    "resolved_config",
    "summaries_long",
    "timeseries_frame",
    "timeseries_long",
    "write_json",
    "write_run",
]
