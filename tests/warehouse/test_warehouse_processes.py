"""The warehouse with real second processes: a reader beside a writer, a killed writer, a held lock.

DuckDB lets no other process open a file while one holds it for writing, so these check that
short per-operation connections plus retry let both sides finish, and that a SIGKILL inside a
transaction leaves no half-written run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest

from warehouse.db import Warehouse
from warehouse.errors import WarehouseLockedError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")

SKUS = 200

_COMMON = f"""
import sys, time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from warehouse.db import Warehouse
from warehouse.records import PriceRecord

START = datetime(2025, 1, 1, tzinfo=UTC)
SKUS = {SKUS}

def records(price):
    return [PriceRecord("bench", "gpu_instance", "p", f"sku-{{i}}", "", "on_demand",
                        "usd_per_hour", Decimal(price)) for i in range({SKUS})]

def ingest(wh, night):
    at = START + timedelta(days=night)
    return wh.ingest_run("bench", records(night), started_at=at, observed_at=at)
"""


def _spawn(body: str, *args: str) -> subprocess.Popen:
    code = _COMMON + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)


def test_reader_and_writer_processes_run_at_the_same_time(tmp_path):
    db, done, ready = tmp_path / "w.duckdb", tmp_path / "writer.done", tmp_path / "reader.ready"
    Warehouse(db, load_snapshot=False)
    writer = _spawn(
        """
        import os
        wh = Warehouse(sys.argv[1], lock_timeout_s=30, load_snapshot=False)
        # Start writing only once the reader is reading, however slowly each process started.
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
            time.sleep(0.01)
        for night in range(1, 11):
            assert ingest(wh, night).status == "ok"
            time.sleep(0.2)  # the next scrape's network time
        open(sys.argv[2], "w").close()
        """,
        str(db),
        str(done),
        str(ready),
    )
    reader = _spawn(
        """
        import os
        wh = Warehouse(sys.argv[1], read_only=True, lock_timeout_s=30)
        versions, reads = set(), 0
        while True:
            finished = os.path.exists(sys.argv[2])
            n, distinct, low = wh.query(
                "SELECT count(*), count(DISTINCT price), min(price) FROM prices").row(0)
            # A run is atomic: every SKU shows the same night's price, or there are none yet.
            assert (n, distinct) in ((0, 0), (SKUS, 1)), (n, distinct)
            if low is not None:
                versions.add(int(low))
            reads += 1
            if reads == 1:
                open(sys.argv[3], "w").close()
            if finished:
                break
        print(reads, len(versions), max(versions))
        """,
        str(db),
        str(done),
        str(ready),
    )
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    reads, versions, last = map(int, r_out.split())
    assert reads >= 2 and versions >= 2  # the reader really ran between the writes
    assert last == 10  # and saw the final run once the writer was done


def test_writer_killed_mid_transaction_leaves_consistent_database(tmp_path):
    db, marker = tmp_path / "w.duckdb", tmp_path / "in_transaction"
    child = _spawn(
        """
        import warehouse.db as wdb
        wh = Warehouse(sys.argv[1], load_snapshot=False)
        assert ingest(wh, 1).status == "ok"
        real_merge = wdb._merge

        def merge_then_hang(*args, **kwargs):
            changed = real_merge(*args, **kwargs)  # every row of night 2 written, not committed
            open(sys.argv[2], "w").close()
            time.sleep(600)
            return changed

        wdb._merge = merge_then_hang
        ingest(wh, 2)
        """,
        str(db),
        str(marker),
    )
    try:
        _wait_for(marker)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    wh = Warehouse(db, load_snapshot=False)
    runs = wh.query("SELECT run_id, status, rows_seen FROM scrape_runs ORDER BY run_id")
    assert runs.rows() == [(1, "ok", SKUS)]  # night 2 left no run row
    prices = wh.query("SELECT count(*) AS n, min(price) AS lo, max(price) AS hi FROM price_periods")
    assert prices.row(0) == (SKUS, Decimal(1), Decimal(1))
    # The database is usable: the next run merges normally on top of night 1.
    from datetime import UTC, datetime

    from warehouse.records import PriceRecord

    at = datetime(2025, 1, 3, tzinfo=UTC)
    again = [
        PriceRecord(
            "bench", "gpu_instance", "p", f"sku-{i}", "", "on_demand", "usd_per_hour", Decimal(3)
        )
        for i in range(SKUS)
    ]
    result = wh.ingest_run("bench", again, started_at=at, observed_at=at)
    assert (result.status, result.rows_changed) == ("ok", SKUS)


def test_lock_held_past_timeout_gives_clear_error(tmp_path):
    db, marker = tmp_path / "w.duckdb", tmp_path / "locked"
    Warehouse(db, load_snapshot=False)
    holder = _spawn(
        """
        import duckdb
        con = duckdb.connect(sys.argv[1])
        open(sys.argv[2], "w").close()
        time.sleep(600)
        """,
        str(db),
        str(marker),
    )
    try:
        _wait_for(marker)
        ro = Warehouse(db, read_only=True, lock_timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(WarehouseLockedError) as info:
            ro.query("SELECT 1")
        assert 0.2 <= time.monotonic() - t0 < 5
        assert str(db) in str(info.value)
        assert "another process holds the write lock" in str(info.value)
    finally:
        holder.kill()
        holder.communicate(timeout=30)
