"""Benchmark: load a synthetic 10M-row Azure 2024-format CSV; print wall time and peak RSS.

Run: .venv/bin/python bench/bench_trace_load.py [--rows N] [--keep DIR]
Each load runs in a fresh subprocess so ru_maxrss is that load's peak, not the generator's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import sim.traffic as traffic
import_s = time.perf_counter() - t0
base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
w = traffic.load_trace(sys.argv[1])
load_s, load_cpu_s = time.perf_counter() - t0, cpu() - c0
t0 = time.perf_counter()
stats = traffic.trace_stats(w)
stats_s = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(w), "import_s": import_s, "load_s": load_s, "stats_s": stats_s,
                  "load_cpu_s": load_cpu_s,
                  "rss_after_import_mb": base_kb / 1024, "peak_rss_mb": peak_kb / 1024,
                  "span_s": stats["span_s"], "format": w.meta["format"]}))
"""


def write_azure2024(path: Path, rows: int, seed: int = 0) -> None:
    """Poisson arrivals at 28/s (a 16.8M-row week's rate) and lognormal tokens, in 1M-row chunks."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-05-10T00:00:00", "us")
    t_us = 0
    with open(path, "wb") as fh:
        fh.write(b"TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for lo in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - lo)
            gaps_us = rng.exponential(1e6 / 28.0, size=n).astype(np.int64)
            times = start + (t_us + np.cumsum(gaps_us)).astype("timedelta64[us]")
            t_us += int(gaps_us.sum())
            frame = pl.DataFrame(
                {
                    "TIMESTAMP": pl.Series(times).dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00"),
                    "ContextTokens": np.maximum(
                        1, np.rint(1020 * np.exp(0.8 * rng.standard_normal(n)))
                    ).astype(np.int64),  # fmt: skip
                    "GeneratedTokens": np.maximum(
                        1, np.rint(129 * np.exp(rng.standard_normal(n)))
                    ).astype(np.int64),  # fmt: skip
                }
            )
            frame.write_csv(fh, include_header=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "azure2024_synthetic.csv"
        t0 = time.perf_counter()
        write_azure2024(path, args.rows)
        print(f"generated {args.rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        for i in range(args.repeats):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout)
            per_row = (r["peak_rss_mb"] - r["rss_after_import_mb"]) * 2**20 / r["rows"]
            print(
                f"run {i + 1}: rows {r['rows']:,} ({r['format']}), load {r['load_s']:.2f} s "
                f"({r['rows'] / r['load_s'] / 1e6:.1f} M rows/s; CPU {r['load_cpu_s']:.2f} s), "
                f"trace_stats {r['stats_s']:.2f} s, "
                f"RSS after import {r['rss_after_import_mb']:.0f} MB, peak RSS "
                f"{r['peak_rss_mb']:.0f} MB ({per_row:.0f} B/row above import)"
            )


if __name__ == "__main__":
    main()
