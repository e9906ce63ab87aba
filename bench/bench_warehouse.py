"""Benchmark of the price warehouse: nightly ingest and as-of queries at a million observations.

Two synthetic histories, each about 1M observations, ~5% of prices changing every night:
  year:  365 nightly runs over 2,740 SKUs (a year of one mid-sized source);
  wide:  20 nightly runs over 50,000 SKUs (the nightly-ingest target size).
Targets (2-core machine): one nightly ingest of 50k observations < 2 s; `prices_as_of` over all
SKUs < 0.2 s. Run: .venv/bin/python bench/bench_warehouse.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from warehouse.db import Warehouse
from warehouse.records import PriceRecord

START = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)


def nightly_records(n_skus: int, cents: np.ndarray) -> list[PriceRecord]:
    return [
        PriceRecord(
            source="synthetic",
            kind="gpu_instance",
            provider=f"p{i % 7}",
            sku=f"sku-{i:06d}",
            region=f"r{i % 5}",
            term="on_demand",
            unit="usd_per_hour",
            price=Decimal(int(cents[i])).scaleb(-2),
            gpu_model="H100-SXM",
            gpu_count=8.0,
        )
        for i in range(n_skus)
    ]


def run_history(name: str, n_skus: int, nights: int, rng: np.random.Generator) -> dict:
    path = Path(tempfile.mkdtemp()) / f"{name}.duckdb"
    wh = Warehouse(path, load_snapshot=False)
    cents = rng.integers(50, 5000, size=n_skus)
    times = []
    for night in range(nights):
        changing = rng.random(n_skus) < 0.05
        cents = np.where(changing, cents + rng.integers(-20, 21, size=n_skus), cents).clip(1)
        records = nightly_records(n_skus, cents)
        at = START + timedelta(days=night)
        t0 = time.perf_counter()
        result = wh.ingest_run("synthetic", records, started_at=at, observed_at=at)
        times.append(time.perf_counter() - t0)
        assert result.status == "ok", result
    periods = wh.query("SELECT count(*) AS n FROM price_periods")["n"][0]
    mid = START + timedelta(days=nights // 2, hours=1)
    as_of_s = []
    for _ in range(5):
        t0 = time.perf_counter()
        rows = wh.prices(mid).height
        as_of_s.append(time.perf_counter() - t0)
    sql_s = []
    for _ in range(5):
        t0 = time.perf_counter()
        wh.query("SELECT count(*) FROM prices_as_of(?::TIMESTAMP)", [mid])
        sql_s.append(time.perf_counter() - t0)
    return {
        "name": name,
        "skus": n_skus,
        "nights": nights,
        "observations": n_skus * nights,
        "periods": periods,
        "first_ingest_s": times[0],
        "steady_median_s": statistics.median(times[1:]),
        "steady_max_s": max(times[1:]),
        "last_ingest_s": times[-1],
        "as_of_rows": rows,
        "prices_as_of_median_s": statistics.median(as_of_s),
        "sql_as_of_median_s": statistics.median(sql_s),
        "db_mb": path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the nights")
    args = parser.parse_args()
    rng = np.random.default_rng(20250101)
    scale = 10 if args.quick else 1
    for name, skus, nights in (("year", 2_740, 365 // scale), ("wide", 50_000, 20 // scale)):
        t0 = time.perf_counter()
        r = run_history(name, skus, max(nights, 2), rng)
        print(
            f"{r['name']}: {r['observations']:,} observations ({r['skus']:,} SKUs x {r['nights']} "
            f"nights) -> {r['periods']:,} periods, {r['db_mb']:.1f} MB, built in "
            f"{time.perf_counter() - t0:.1f} s\n"
            f"  nightly ingest of {r['skus']:,}: first {r['first_ingest_s']:.3f} s, steady median "
            f"{r['steady_median_s']:.3f} s, max {r['steady_max_s']:.3f} s, last "
            f"{r['last_ingest_s']:.3f} s\n"
            f"  prices(as_of) over all {r['as_of_rows']:,} SKUs (DataFrame): median "
            f"{r['prices_as_of_median_s']:.3f} s; SELECT count(*) FROM prices_as_of: median "
            f"{r['sql_as_of_median_s']:.3f} s"
        )


if __name__ == "__main__":
    main()
