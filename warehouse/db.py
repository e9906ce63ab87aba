"""The `Warehouse` class: the one owner of the DuckDB price database.

It knows where the file lives, migrates it, merges scraped prices into SCD type 2 periods, and
answers read queries as polars DataFrames. DuckDB lets only one process hold a file open for
writing, and while it does, no other process can open the file at all (not even read-only), so
every operation opens its own short-lived connection and retries while the file is locked.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from warehouse.checks import LEVELS, Finding, run_checks, store_checks
from warehouse.errors import ReadOnlySQLError, WarehouseError, WarehouseLockedError
from warehouse.migrations import MIGRATIONS
from warehouse.records import (
    KINDS,
    OBSERVED_AT_QUALITIES,
    TERMS,
    UNITS,
    PriceRecord,
    RawCapture,
)

SNAPSHOT_DIR = Path(__file__).parent / "snapshot"
SNAPSHOT_SOURCE = "snapshot"
_CHECKS_MIGRATION = "0005_price_checks_and_age"
DEFAULT_LOCK_TIMEOUT_S = 10.0
# DuckDB otherwise downloads a missing extension (httpfs for a URL in `sim sql`) from
# extensions.duckdb.org: nothing but an explicit refresh may touch the network.
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False}
# Every read-only open is sandboxed by DuckDB itself: no file but the warehouse can be read or
# written (COPY, EXPORT, ATTACH, read_text, glob, ... whatever wraps them, EXPLAIN ANALYZE
# included), no extension is installed or loaded, and no statement can undo these settings.
# They must be given at connect time: `enable_external_access` cannot be turned back on later.
_SANDBOX_SETTINGS = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
_READ_CONFIG = {**_DUCKDB_CONFIG, **_SANDBOX_SETTINGS}

KEY_COLUMNS = ("source", "kind", "provider", "sku", "region", "term", "unit", "tier_min_tokens")
VALUE_COLUMNS = (
    "currency",
    "price",
    "gpu_model",
    "gpu_name_source",
    "gpu_count",
    "gpu_memory_gb",
    "vcpus",
    "ram_gb",
    "context_length",
    "upfront",
)

_STAGE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("kind", pa.string()),
        ("provider", pa.string()),
        ("sku", pa.string()),
        ("region", pa.string()),
        ("term", pa.string()),
        ("unit", pa.string()),
        ("tier_min_tokens", pa.int64()),
        ("currency", pa.string()),
        ("price", pa.decimal128(24, 12)),
        ("gpu_model", pa.string()),
        ("gpu_name_source", pa.string()),
        ("gpu_count", pa.float64()),
        ("gpu_memory_gb", pa.float64()),
        ("vcpus", pa.float64()),
        ("ram_gb", pa.float64()),
        ("context_length", pa.int64()),
        ("upfront", pa.decimal128(24, 12)),
        ("valid_from", pa.timestamp("us")),
        ("valid_to", pa.timestamp("us")),
    ]
)

# Statement types a user query may run. DESCRIBE, SHOW and SUMMARIZE parse as SELECT.
_READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


@dataclass(frozen=True)
class RunResult:
    """What one scrape (or snapshot load) did to the warehouse."""

    run_id: int
    source: str
    status: str  # 'ok' | 'failed' | 'rejected'
    rows_seen: int
    rows_changed: int
    error: str | None


class _Rejected(Exception):
    """Internal: the run's records fail a check; the run is stored as 'rejected'."""


def to_utc_naive(ts: datetime) -> datetime:
    """Timestamps are stored as naive UTC; an aware value is converted, a naive one taken as UTC."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def parse_as_of(value: datetime | date | str | None) -> datetime | None:
    """`as_of` as naive UTC. A date (or 'YYYY-MM-DD') means 00:00 UTC of that day."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_utc_naive(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day)
        return to_utc_naive(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise WarehouseError(
            f"as_of: {value!r} is not a date (YYYY-MM-DD) or an ISO timestamp"
        ) from None


class Warehouse:
    """The DuckDB price warehouse. Open with a path, ':memory:' (tests), or None for the default.

    Example:
        with Warehouse() as wh:
            wh.gpu_offers(gpu_model="H100")
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        load_snapshot: bool = True,
        lock_timeout_s: float | None = None,
    ):
        if lock_timeout_s is None:
            lock_timeout_s = float(
                os.environ.get("INFERCOST_LOCK_TIMEOUT_S", DEFAULT_LOCK_TIMEOUT_S)
            )
        self.lock_timeout_s = lock_timeout_s
        self.read_only = read_only
        self._memory: duckdb.DuckDBPyConnection | None = None
        if path is None:
            path = self.default_path()
        if str(path) == ":memory:":
            self.path = None
            self._memory = duckdb.connect(":memory:", config=_DUCKDB_CONFIG)
        else:
            self.path = Path(path).expanduser()
        if os.environ.get("INFERCOST_NO_SNAPSHOT"):  # an empty warehouse on purpose (tests, audits)
            load_snapshot = False
        # A read-only open of a database that does not exist yet, or that an older infercost
        # created, still has to find today's tables and views: set them up first, briefly writable.
        if not read_only or self.path is None or not self.path.exists() or self._pending():
            self._initialise(load_snapshot)

    def _pending(self) -> bool:
        """Whether migrations shipped since this file was last opened for writing are missing.

        One attempt, no waiting: while a writer holds the file it is being migrated anyway, and
        the reads that follow wait for the lock as usual."""
        try:
            con = duckdb.connect(str(self.path), read_only=True, config=_READ_CONFIG)
        except duckdb.IOException:
            return False
        try:
            applied = {
                name for (name,) in con.execute("SELECT name FROM schema_migrations").fetchall()
            }
        except duckdb.CatalogException:
            return True
        finally:
            con.close()
        return any(name not in applied for name, _ in MIGRATIONS)

    @staticmethod
    def default_path() -> Path:
        """$INFERCOST_DB, else `infercost.duckdb` in the per-user data directory."""
        env = os.environ.get("INFERCOST_DB")
        if env:
            return Path(env).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("infercost")) / "infercost.duckdb"

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path) if self.path else ':memory:'!r})"

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._memory is not None:
            yield self._memory
            return
        if self.path is None:
            raise WarehouseError("the warehouse is closed")
        con = self._open_with_retry(write=write, force=False)
        try:
            yield con
        finally:
            con.close()

    def _open_with_retry(self, *, write: bool, force: bool) -> duckdb.DuckDBPyConnection:
        if write and self.read_only and not force:
            raise WarehouseError(f"{self.path}: opened read-only; this operation writes")
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay_s = 0.01
        while True:
            try:
                config = _DUCKDB_CONFIG if write else _READ_CONFIG
                return duckdb.connect(str(self.path), read_only=not write, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseError(f"{self.path}: cannot open: {exc}") from None
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    raise WarehouseLockedError(
                        f"{self.path}: another process holds the write lock "
                        f"(waited {self.lock_timeout_s:g} s; a refresh may be running, try again "
                        "later or raise INFERCOST_LOCK_TIMEOUT_S)"
                    ) from None
                # The last sleep is cut to the deadline: giving up one backoff step early waited
                # only about half the promised timeout.
                time.sleep(min(delay_s, remaining_s))
                delay_s = min(delay_s * 2, 0.5)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _initialise(self, load_snapshot: bool) -> None:
        if self._memory is not None:
            con_cm = contextlib.nullcontext(self._memory)
        else:
            con_cm = contextlib.closing(self._open_with_retry(write=True, force=True))
        with con_cm as con:
            applied = self._migrate(con)
            empty = con.execute("SELECT count(*) FROM price_periods").fetchall()[0][0] == 0
            if load_snapshot and empty and (SNAPSHOT_DIR / "manifest.json").exists():
                self._load_snapshot(con, SNAPSHOT_DIR)
            elif not empty and _CHECKS_MIGRATION in applied:
                # A database from before the integrity rules: check what it holds once, so its
                # quarantine is in force from the first read.
                con.execute("BEGIN TRANSACTION")
                store_checks(con, None, _now())
                con.execute("COMMIT")

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
        )
        done = {row[0] for row in con.execute("SELECT name FROM schema_migrations").fetchall()}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [name, _now()])
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            applied.append(name)
        return applied

    def migrations(self) -> pl.DataFrame:
        """The migrations recorded as applied, in order."""
        return self.query("SELECT name, applied_at FROM schema_migrations ORDER BY name")

    # -- reads -------------------------------------------------------------------------------

    def query(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Run read-only SQL and return the last statement's rows. Writes raise ReadOnlySQLError."""
        return self.statements(sql, params)[-1]

    def statements(self, sql: str, params: list | dict | None = None) -> list[pl.DataFrame]:
        """Run read-only SQL, statements separated by `;` in order, and return each one's rows.

        A statement filter gives writes a clear message; the guarantee is the sandboxed
        connection (see _SANDBOX_SETTINGS). A ':memory:' warehouse is sandboxed on first use
        and stays so. `params` bind to the last statement."""
        with self._connect(write=False) as con:
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise WarehouseError(f"SQL: {_first_line(exc)}") from None
            if not statements:
                raise WarehouseError("SQL: no statement given")
            for statement in statements:
                if statement.type not in _READ_STATEMENTS:
                    kind = statement.type.name
                    raise ReadOnlySQLError(
                        f"SQL: {kind} statements are refused; only read-only queries "
                        "(SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) are allowed"
                    )
            locked = con.sql("SELECT current_setting('lock_configuration')").fetchall()[0][0]
            if not locked:  # a ':memory:' warehouse; files are opened sandboxed
                for name, value in _SANDBOX_SETTINGS.items():
                    con.execute(f"SET {name} = {str(value).lower()}")
            try:
                return [
                    _frame(con, st.query, params if i == len(statements) - 1 else None)
                    for i, st in enumerate(statements)
                ]
            except duckdb.Error as exc:
                raise WarehouseError(f"SQL: {_first_line(exc)}") from None

    def _read(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with self._connect(write=False) as con:
            return _frame(con, sql, params)

    def prices(
        self,
        as_of: datetime | date | str | None = None,
        *,
        kind: str | None = None,
        provider: str | None = None,
        sku: str | None = None,
        gpu_model: str | None = None,
        region: str | None = None,
        term: str | None = None,
        unit: str | None = None,
    ) -> pl.DataFrame:
        """Prices in effect at `as_of` (None: the current ones), one row per natural key."""
        src, params = _price_source("prices", as_of)
        where, more = _filters(
            kind=kind,
            provider=provider,
            sku=sku,
            gpu_model=gpu_model,
            region=region,
            term=term,
            unit=unit,
        )
        sql = (
            f"SELECT * FROM {src}{where} "
            "ORDER BY kind, provider, sku, region, term, unit, tier_min_tokens, source"
        )
        return self._read(sql, params + more)

    def gpu_offers(
        self,
        as_of: datetime | date | str | None = None,
        *,
        provider: str | None = None,
        sku: str | None = None,
        gpu_model: str | None = None,
        region: str | None = None,
        term: str | None = None,
        usable: bool = False,
    ) -> pl.DataFrame:
        """GPU instance and serverless prices with GPU attributes and USD per GPU-hour.

        `usable` leaves out quarantined rows (what pricing may use as a cost)."""
        src, params = _price_source("gpu_offers", as_of)
        where, more = _filters(
            provider=provider, sku=sku, gpu_model=gpu_model, region=region, term=term
        )
        if usable:
            where += (" AND " if where else " WHERE ") + "NOT quarantined"
        sql = (
            f"SELECT * FROM {src}{where} "
            "ORDER BY gpu_model NULLS LAST, usd_per_gpu_hour NULLS LAST, provider, sku, region, term"
        )
        return self._read(sql, params + more)

    def api_prices(
        self,
        as_of: datetime | date | str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> pl.DataFrame:
        """One row per (source, provider, model, region): USD per million tokens by direction."""
        src, params = _price_source("api_prices", as_of)
        where, more = _filters(provider=provider, model=model)
        sql = f"SELECT * FROM {src}{where} ORDER BY provider, model, region, source"
        return self._read(sql, params + more)

    def check_summary(self) -> dict[str, int]:
        """How many current stored findings there are per level (errors first)."""
        rows = self._read(
            "SELECT level, count(*) AS n FROM price_checks WHERE current GROUP BY level"
        ).rows()
        counts = dict(rows)
        return {level: counts[level] for level in LEVELS if counts.get(level)}

    def check(self) -> list[Finding]:
        """Run the integrity rules over the stored periods now (read-only); errors first."""
        with self._connect(write=False) as con:
            return run_checks(con)

    def price_history(self, sku: str, *, provider: str | None = None) -> pl.DataFrame:
        """Every period ever stored for `sku`, oldest first within each natural key."""
        where, params = _filters(sku=sku, provider=provider)
        sql = (
            f"SELECT * FROM price_history{where} ORDER BY provider, kind, region, term, unit, "
            "tier_min_tokens, source, valid_from"
        )
        return self._read(sql, params)

    def runs(self, source: str | None = None, limit: int = 50) -> pl.DataFrame:
        """The most recent scrape runs, newest first."""
        where, params = _filters(source=source)
        return self._read(
            f"SELECT * FROM scrape_runs{where} ORDER BY run_id DESC LIMIT ?", params + [limit]
        )

    def run_info(self, run_id: int) -> dict:
        """The `scrape_runs` row of `run_id` as a dict; WarehouseError if there is none."""
        df = self._read("SELECT * FROM scrape_runs WHERE run_id = ?", [run_id])
        if df.is_empty():
            raise WarehouseError(f"run {run_id}: no such scrape run")
        return df.row(0, named=True)

    def captures_for_run(self, run_id: int) -> list[RawCapture]:
        """The raw HTTP responses stored with `run_id`, bodies decompressed, in fetch order."""
        with self._connect(write=False) as con:
            rows = con.execute(
                "SELECT c.source, c.url, c.fetched_at, c.http_status, b.body_gzip, c.content_type "
                "FROM raw_captures c JOIN capture_bodies b USING (sha256) "
                "WHERE c.run_id = ? ORDER BY c.capture_id",
                [run_id],
            ).fetchall()
        return [
            RawCapture(
                source=source,
                url=url,
                fetched_at=fetched_at.replace(tzinfo=UTC),
                http_status=status,
                body=gzip.decompress(body),
                content_type=content_type,
            )
            for source, url, fetched_at, status, body, content_type in rows
        ]

    # -- writes ------------------------------------------------------------------------------

    def ingest_run(
        self,
        source: str,
        records: Sequence[PriceRecord],
        captures: Sequence[RawCapture] = (),
        *,
        started_at: datetime,
        observed_at: datetime | None = None,
        min_ratio: float = 0.5,
        complete: bool = True,
        observed_at_quality: str = "exact",
    ) -> RunResult:
        """Store one scrape of `source` in one transaction: its run row, captures and prices.

        Undated records are a picture of the source at `observed_at`: unchanged prices extend
        their period, changed ones close it and open a new one. Open periods of this source that
        are missing from the run are closed only when the run is `complete` (the parser dropped
        no row as unreadable): a dropped row is unknown, not removed. A run observed before the
        source's latest observation is a backfill: its periods are inserted at its own date.
        Records with `valid_from` are stored as the periods they state. Records that fail a
        check, or a run that shrinks below `min_ratio` of the last ok run (or, before any, of the
        source's stored current prices), give status 'rejected' and leave prices untouched.
        The integrity rules (warehouse/checks.py) run after every stored run.
        `observed_at_quality` (records.OBSERVED_AT_QUALITIES) says how far `observed_at` can be
        trusted; it is stored on the periods this run opens (a stated period is 'exact').
        """
        if observed_at_quality not in OBSERVED_AT_QUALITIES:
            raise WarehouseError(
                f"observed_at_quality: {observed_at_quality!r} is not one of "
                f"{', '.join(OBSERVED_AT_QUALITIES)}"
            )
        if observed_at is None:
            observed_at = max((c.fetched_at for c in captures), default=None) or _now()
        observed = to_utc_naive(observed_at)
        started = to_utc_naive(started_at)
        rows_seen = len(records)
        try:
            _check_records(source, records)
            stage = _stage_table(records)
        except _Rejected as exc:
            return self._store_run(
                source, started, observed, "rejected", rows_seen, 0, str(exc), captures
            )
        with self._transaction() as con:
            try:
                _check_against_history(con, source, rows_seen, observed, min_ratio)
                rejection = None
            except _Rejected as exc:
                rejection = str(exc)
            run_id = _insert_run(con, source, started, observed)
            _store_captures(con, run_id, captures)
            if rejection is not None:
                return _finish_run(con, run_id, source, "rejected", rows_seen, 0, rejection)
            con.register("stage_arrow", stage)
            try:
                if _is_backfill(con, source, observed):
                    changed = _backfill(con, source, run_id, observed, complete)
                else:
                    changed = _merge(con, source, run_id, observed, complete)
                con.execute(
                    "UPDATE price_periods SET observed_at_quality = "
                    "CASE WHEN dated THEN 'exact' ELSE ? END WHERE first_run_id = ?",
                    [observed_at_quality, run_id],
                )
            finally:
                con.unregister("stage_arrow")
            store_checks(con, run_id, _now())
            return _finish_run(con, run_id, source, "ok", rows_seen, changed, None)

    def record_failed_run(
        self,
        source: str,
        *,
        started_at: datetime,
        error: str,
        captures: Sequence[RawCapture] = (),
    ) -> RunResult:
        """Record a scrape that failed before producing records; prices stay as they were."""
        return self._store_run(
            source, to_utc_naive(started_at), None, "failed", 0, 0, error, captures
        )

    def _store_run(self, source, started, observed, status, rows_seen, changed, error, captures):
        with self._transaction() as con:
            run_id = _insert_run(con, source, started, observed)
            _store_captures(con, run_id, captures)
            return _finish_run(con, run_id, source, status, rows_seen, changed, error)

    def record_sim_run(
        self,
        run_id: str,
        *,
        scenario: str,
        started_at: datetime,
        config_json: str,
        summaries: pl.DataFrame,
        timeseries: pl.DataFrame,
    ) -> None:
        """Store one simulation's resolved config and results; re-recording a run_id replaces it."""
        summaries = summaries.select(
            pl.col("fleet").cast(pl.String),
            pl.col("kind").cast(pl.String),
            pl.col("metric").cast(pl.String),
            pl.col("value").cast(pl.Float64),
        )
        timeseries = timeseries.select(
            pl.col("replication").cast(pl.Int32),
            pl.col("fleet").cast(pl.String),
            pl.col("window_start_s").cast(pl.Float64),
            pl.col("metric").cast(pl.String),
            pl.col("value").cast(pl.Float64),
        )
        with self._transaction() as con:
            for table in ("sim_runs", "sim_summaries", "sim_timeseries"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            con.execute(
                "INSERT INTO sim_runs VALUES (?, ?, ?, ?)",
                [run_id, scenario, to_utc_naive(started_at), config_json],
            )
            con.register("sim_summaries_arrow", summaries.to_arrow())
            con.register("sim_timeseries_arrow", timeseries.to_arrow())
            try:
                con.execute(
                    "INSERT INTO sim_summaries SELECT ?, fleet, kind, metric, value "
                    "FROM sim_summaries_arrow",
                    [run_id],
                )
                con.execute(
                    "INSERT INTO sim_timeseries SELECT ?, replication, fleet, window_start_s, "
                    "metric, value FROM sim_timeseries_arrow",
                    [run_id],
                )
            finally:
                con.unregister("sim_summaries_arrow")
                con.unregister("sim_timeseries_arrow")

    # -- snapshot ----------------------------------------------------------------------------

    def write_snapshot(
        self, out_dir: str | Path, *, placeholder: bool = False, note: str | None = None
    ) -> Path:
        """Write every price period and a manifest to `out_dir`; returns the manifest's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        periods = self._read(
            "SELECT * EXCLUDE (first_run_id, last_run_id) FROM price_periods "
            "ORDER BY source, kind, provider, sku, region, term, unit, tier_min_tokens, valid_from"
        )
        if periods.is_empty():
            raise WarehouseError("snapshot: the warehouse holds no prices to write")
        periods.write_parquet(out / "periods.parquet")
        counts = periods.group_by("source").len().sort("source")
        snapshot_at = periods["last_seen"].max()
        manifest = {
            "format": 1,
            "snapshot_at": snapshot_at.isoformat() + "Z",
            "rows": periods.height,
            "sources": {row["source"]: row["len"] for row in counts.iter_rows(named=True)},
            "placeholder": placeholder,
            "note": note or "",
        }
        path = out / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        return path

    def load_snapshot(self, snapshot_dir: str | Path | None = None) -> RunResult:
        """Load a snapshot into this warehouse, which must hold no prices yet."""
        directory = Path(snapshot_dir) if snapshot_dir is not None else SNAPSHOT_DIR
        with self._connect(write=True) as con:
            if con.execute("SELECT count(*) FROM price_periods").fetchall()[0][0]:
                raise WarehouseError(
                    f"snapshot: {directory}: the warehouse already holds prices; "
                    "a snapshot only loads into an empty one"
                )
            return self._load_snapshot(con, directory)

    @staticmethod
    def _load_snapshot(con: duckdb.DuckDBPyConnection, directory: Path) -> RunResult:
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            periods = pl.read_parquet(directory / "periods.parquet")
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"snapshot: {directory}: {exc}") from None
        snapshot_at = parse_as_of(manifest["snapshot_at"])
        con.execute("BEGIN TRANSACTION")
        try:
            run_id = _insert_run(con, SNAPSHOT_SOURCE, _now(), snapshot_at)
            con.register("snapshot_arrow", periods.to_arrow())
            columns = [c for c in periods.columns if c not in ("first_run_id", "last_run_id")]
            names = ", ".join(columns)
            con.execute(
                f"INSERT INTO price_periods ({names}, first_run_id, last_run_id) "
                f"SELECT {names}, ?, ? FROM snapshot_arrow",
                [run_id, run_id],
            )
            con.unregister("snapshot_arrow")
            store_checks(con, run_id, _now())
            result = _finish_run(
                con, run_id, SNAPSHOT_SOURCE, "ok", periods.height, periods.height, None
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return result


# -- helpers (module level so the transaction code reads top to bottom) ---------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params) -> pl.DataFrame:
    relation = con.sql(sql, params=params or None)
    if relation is None:
        return pl.DataFrame()
    return relation.pl()


def _price_source(view: str, as_of) -> tuple[str, list]:
    ts = parse_as_of(as_of)
    if ts is None:
        return view, []
    return f"{view}_as_of(?::TIMESTAMP)", [ts]


def _filters(**values) -> tuple[str, list]:
    clauses, params = [], []
    for column, value in values.items():
        if value is None:
            continue
        if column == "gpu_model":
            # "H100" should find H100-SXM and H100-PCIE but "A10" must not find A100.
            clauses.append(
                "(lower(gpu_model) = lower(?) OR lower(gpu_model) LIKE lower(?) || '-%')"
            )
            params += [value, value]
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# Magnitude bounds checked at storage, whatever the scraper did: a value outside is junk or a
# unit mix-up, and a non-finite one would poison every sum it enters.
_ATTRIBUTE_BOUNDS = (
    ("gpu_count", 0, 1024),
    ("gpu_memory_gb", 0, 4096),
    ("vcpus", 0, 4096),
    ("ram_gb", 0, 1_048_576),
    ("context_length", 0, 1_000_000_000),
    ("tier_min_tokens", -1, 1_000_000_000),
)
_MAX_PRICE_ANY = Decimal(10) ** 12  # the column's own capacity
_MAX_PRICE = {
    "usd_per_mtok_input": Decimal(1000),
    "usd_per_mtok_output": Decimal(1000),
    "usd_per_mtok_cached_input": Decimal(1000),
    "usd_per_mtok_cache_write": Decimal(1000),
    "usd_per_request": Decimal(100),
    "usd_per_gpu_hour": Decimal(500),
    "usd_per_second": Decimal(500 * 1024) / 3600,
    "usd_per_hour": Decimal(500 * 1024),
}
_SANE_YEARS = (2000, 2100)


def _check_records(source: str, records: Sequence[PriceRecord]) -> None:
    seen: set[tuple] = set()
    for i, r in enumerate(records):
        where = f"record {i} ({r.provider}/{r.sku})"
        if r.source != source:
            raise _Rejected(f"{where}: source {r.source!r} differs from the run's {source!r}")
        if r.kind not in KINDS:
            raise _Rejected(f"{where}: kind {r.kind!r} is not one of {sorted(KINDS)}")
        if r.term not in TERMS:
            raise _Rejected(f"{where}: term {r.term!r} is not one of {sorted(TERMS)}")
        if r.unit not in UNITS:
            raise _Rejected(f"{where}: unit {r.unit!r} is not one of {sorted(UNITS)}")
        if not isinstance(r.price, Decimal) or not r.price.is_finite() or r.price < 0:
            raise _Rejected(f"{where}: price {r.price!r} is not a finite Decimal >= 0")
        if not r.sku or not r.provider:
            raise _Rejected(f"{where}: provider and sku must not be empty")
        for name, low, high in _ATTRIBUTE_BOUNDS:
            value = getattr(r, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Rejected(f"{where}: {name} {value!r} is not a number")
            if not math.isfinite(value) or not low < value <= high:
                raise _Rejected(f"{where}: {name} {value!r} is outside ({low:g}, {high:g}]")
        if r.price > _MAX_PRICE.get(r.unit, _MAX_PRICE_ANY):
            raise _Rejected(f"{where}: price {r.price} {r.unit} is beyond any real price")
        for stamp in (r.valid_from, r.valid_to):
            if stamp is not None and not _SANE_YEARS[0] <= stamp.year <= _SANE_YEARS[1]:
                raise _Rejected(f"{where}: date {stamp} is outside {_SANE_YEARS}")
        if r.valid_to is not None and (r.valid_from is None or r.valid_to <= r.valid_from):
            raise _Rejected(f"{where}: valid_to {r.valid_to} needs an earlier valid_from")
        key = (r.kind, r.provider, r.sku, r.region, r.term, r.unit, r.tier_min_tokens, r.valid_from)
        if key in seen:
            raise _Rejected(f"{where}: duplicate natural key {key[:-1]} in one run")
        seen.add(key)


def _stage_table(records: Sequence[PriceRecord]) -> pa.Table:
    names = [f.name for f in fields(PriceRecord)]
    columns = {name: [getattr(r, name) for r in records] for name in _STAGE_SCHEMA.names}
    for name in ("valid_from", "valid_to"):
        columns[name] = [None if ts is None else to_utc_naive(ts) for ts in columns[name]]
    assert set(_STAGE_SCHEMA.names) <= set(names)
    try:
        return pa.table(columns, schema=_STAGE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        # e.g. a price with more than 12 decimals: storing it would round, so refuse instead.
        raise _Rejected(f"records do not fit the price table: {exc}") from None


def _insert_run(con, source: str, started: datetime, observed: datetime | None) -> int:
    return con.execute(
        "INSERT INTO scrape_runs (source, started_at, observed_at, status) "
        "VALUES (?, ?, ?, 'ok') RETURNING run_id",
        [source, started, observed],
    ).fetchall()[0][0]


def _finish_run(con, run_id, source, status, rows_seen, changed, error) -> RunResult:
    con.execute(
        "UPDATE scrape_runs SET status = ?, rows_seen = ?, rows_changed = ?, error = ?, "
        "finished_at = ? WHERE run_id = ?",
        [status, rows_seen, changed, error, _now(), run_id],
    )
    return RunResult(run_id, source, status, rows_seen, changed, error)


def _store_captures(con, run_id: int, captures: Sequence[RawCapture]) -> None:
    for c in captures:
        digest = hashlib.sha256(c.body).hexdigest()
        # Identical bodies (a nightly fetch of an unchanged page) are stored once.
        con.execute(
            "INSERT OR IGNORE INTO capture_bodies VALUES (?, ?, ?)",
            [digest, len(c.body), gzip.compress(c.body, compresslevel=6, mtime=0)],
        )
        con.execute(
            "INSERT INTO raw_captures (run_id, source, url, fetched_at, http_status, "
            "content_type, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                c.source,
                c.url,
                to_utc_naive(c.fetched_at),
                c.http_status,
                c.content_type,
                digest,
            ],
        )


def _check_against_history(
    con, source: str, rows_seen: int, observed: datetime, min_ratio: float
) -> None:
    last_ok = con.execute(
        "SELECT rows_seen FROM scrape_runs WHERE source = ? AND status = 'ok' "
        "ORDER BY run_id DESC LIMIT 1",
        [source],
    ).fetchall()
    if last_ok:
        baseline, what = last_ok[0][0], "the last ok run"
    else:
        # The first live run of a source after a snapshot load: compare with what it stored.
        baseline = con.execute(
            "SELECT count(*) FROM price_periods WHERE source = ? AND valid_to IS NULL", [source]
        ).fetchall()[0][0]
        what = "the current prices stored for it (snapshot)"
    if baseline and rows_seen < min_ratio * baseline:
        raise _Rejected(
            f"{rows_seen} prices is fewer than {min_ratio:g} x the {baseline} of {what}; "
            "refusing to close the missing ones (layout change?)"
        )


_KEY_MATCH = " AND ".join(f"s.{c} = p.{c}" for c in KEY_COLUMNS)
_SAME_VALUES = " AND ".join(f"s.{c} IS NOT DISTINCT FROM p.{c}" for c in VALUE_COLUMNS)
_INSERT_COLUMNS = ", ".join(KEY_COLUMNS + VALUE_COLUMNS)


def _merge(con, source: str, run_id: int, observed: datetime, complete: bool = True) -> int:
    """The SCD type 2 merge of `stage_arrow` into `price_periods`; returns rows changed."""
    # Open periods of this source, with their row ids, and how each staged record matches them.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cur AS SELECT rowid AS rid, * FROM price_periods "
        "WHERE source = ? AND valid_to IS NULL",
        [source],
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE undated AS
        SELECT s.*, p.rid, p.rid IS NOT NULL AND {_SAME_VALUES} AS same
        FROM stage_arrow s LEFT JOIN cur p ON {_KEY_MATCH}
        WHERE s.valid_from IS NULL"""
    )
    _stage_dated(con, source)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM undated WHERE NOT same), "
        "(SELECT count(*) FROM cur WHERE ? AND rid NOT IN (SELECT rid FROM undated "
        "WHERE rid IS NOT NULL UNION ALL SELECT rid FROM dated WHERE rid IS NOT NULL))",
        [complete],
    ).fetchall()[0]
    seen = [observed, run_id]
    # Periods that continue unchanged only move their last sighting.
    con.execute(
        "UPDATE price_periods SET last_seen = ?, last_run_id = ? "
        "WHERE rowid IN (SELECT rid FROM undated WHERE same)",
        seen,
    )
    # A changed undated price closes its period; after a complete run a missing one closes too
    # (it left the catalog).
    con.execute(
        "UPDATE price_periods SET valid_to = ? WHERE rowid IN ("
        "SELECT rid FROM undated WHERE rid IS NOT NULL AND NOT same UNION ALL "
        "SELECT rid FROM cur WHERE ? AND rid NOT IN (SELECT rid FROM undated "
        "WHERE rid IS NOT NULL UNION ALL SELECT rid FROM dated WHERE rid IS NOT NULL))",
        [observed, complete],
    )
    con.execute(
        f"INSERT INTO price_periods ({_INSERT_COLUMNS}, valid_from, valid_to, first_seen, "
        "last_seen, first_run_id, last_run_id, dated) "
        f"SELECT {_INSERT_COLUMNS}, ?, NULL, ?, ?, ?, ?, false FROM undated WHERE NOT same",
        [observed, observed, observed, run_id, run_id],
    )
    changed = _apply_dated(con, run_id, observed)
    con.execute("DROP TABLE cur; DROP TABLE undated")
    return sum(counts) + changed


def _stage_dated(con, source: str) -> None:
    """`dated`: the staged records that state their own period, matched to the stored ones."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE dated AS
        SELECT s.*, p.rid,
               p.rid IS NOT NULL AND {_SAME_VALUES}
                   AND s.valid_to IS NOT DISTINCT FROM p.valid_to AS same
        FROM stage_arrow s
        LEFT JOIN (SELECT rowid AS rid, * FROM price_periods WHERE source = ?) p
               ON {_KEY_MATCH} AND s.valid_from = p.valid_from
        WHERE s.valid_from IS NOT NULL""",
        [source],
    )


def _apply_dated(con, run_id: int, observed: datetime) -> int:
    """Store the `dated` records; returns how many periods changed."""
    changed = con.execute("SELECT count(*) FROM dated WHERE NOT same").fetchall()[0][0]
    seen = [observed, run_id]
    con.execute(
        "UPDATE price_periods SET last_seen = ?, last_run_id = ? "
        "WHERE rowid IN (SELECT rid FROM dated WHERE same)",
        seen,
    )
    # A dated period the source restated (new price, or now closed) is corrected in place.
    set_values = ", ".join(f"{c} = d.{c}" for c in VALUE_COLUMNS)
    con.execute(
        f"UPDATE price_periods SET {set_values}, valid_to = d.valid_to, last_seen = ?, "
        "last_run_id = ? FROM dated d WHERE d.rid IS NOT NULL AND NOT d.same "
        "AND price_periods.rowid = d.rid",
        seen,
    )
    con.execute(
        f"INSERT INTO price_periods ({_INSERT_COLUMNS}, valid_from, valid_to, first_seen, "
        "last_seen, first_run_id, last_run_id, dated) "
        f"SELECT {_INSERT_COLUMNS}, valid_from, valid_to, ?, ?, ?, ?, true FROM dated WHERE rid IS NULL",
        [observed, observed, run_id, run_id],
    )
    con.execute("DROP TABLE dated")
    return changed


def _is_backfill(con, source: str, observed: datetime) -> bool:
    """Whether `observed` is older than what this source has already told us (undated)."""
    latest = con.execute(
        "SELECT greatest((SELECT max(last_seen) FROM price_periods WHERE source = ? AND NOT "
        "dated), (SELECT max(observed_at) FROM scrape_runs WHERE source = ? AND status = 'ok' "
        "AND finished_at IS NOT NULL))",
        [source, source],
    ).fetchall()[0][0]
    return latest is not None and observed < latest


def _backfill(con, source: str, run_id: int, observed: datetime, complete: bool) -> int:
    """Insert an older run's observations at their own date, splitting the periods around it.

    Every period is a run of equal sightings: it starts at the first sighting of its value and
    ends at the first later sighting of the key that differs (or its absence from a complete
    run). The periods come out as if the runs had been ingested in date order.
    """
    frame = _frame(con, "SELECT * FROM price_periods WHERE source = ? AND NOT dated", [source])
    schema = frame.schema
    stored: dict[tuple, list[dict]] = {}
    for row in frame.to_dicts():
        stored.setdefault(tuple(row[c] for c in KEY_COLUMNS), []).append(row)
    staged = {
        tuple(row[c] for c in KEY_COLUMNS): row
        for row in _frame(
            con, "SELECT * FROM stage_arrow WHERE valid_from IS NULL", None
        ).to_dicts()
    }
    # The source's sightings: its ok runs and the dates its periods record.
    sightings = sorted(
        {
            t
            for (t,) in con.execute(
                "SELECT observed_at FROM scrape_runs WHERE source = ? AND status = 'ok' "
                "AND run_id <> ? AND finished_at IS NOT NULL UNION ALL "
                "SELECT valid_from FROM price_periods WHERE source = ? AND NOT dated UNION ALL "
                "SELECT last_seen FROM price_periods WHERE source = ? AND NOT dated",
                [source, run_id, source, source],
            ).fetchall()
        }
    )
    next_seen = min((t for t in sightings if t > observed), default=None)
    before = [t for t in sightings if t < observed]
    changed = 0
    rewritten: dict[tuple, list[dict]] = {}
    for key in set(stored) | set(staged):
        periods = sorted(stored.get(key, []), key=lambda p: p["valid_from"])
        new = _backfill_key(periods, staged.get(key), observed, next_seen, before, run_id, complete)
        if new is not periods:
            rewritten[key] = new
            changed += 1
    if rewritten:
        keys = pl.DataFrame(
            [dict(zip(KEY_COLUMNS, k, strict=True)) for k in rewritten],
            schema={c: schema[c] for c in KEY_COLUMNS},
        )
        con.register("backfill_keys", keys.to_arrow())
        con.execute(
            "DELETE FROM price_periods WHERE NOT dated AND ("
            + ", ".join(KEY_COLUMNS)
            + ") IN (SELECT ("
            + ", ".join(KEY_COLUMNS)
            + ") FROM backfill_keys)"
        )
        con.unregister("backfill_keys")
        rows = [p for periods in rewritten.values() for p in periods]
        for row in rows:  # periods built from staged records: the run's quality is set after
            if row.get("observed_at_quality") is None:
                row["observed_at_quality"] = "exact"
        if rows:
            con.register("backfill_rows", pl.DataFrame(rows, schema=schema).to_arrow())
            names = ", ".join(schema.names())
            con.execute(f"INSERT INTO price_periods ({names}) SELECT {names} FROM backfill_rows")
            con.unregister("backfill_rows")
    _stage_dated(con, source)
    return changed + _apply_dated(con, run_id, observed)


def _cut(period: dict, t, before) -> dict:
    """`period` ended at `t`; its last sighting is the latest one of the source before `t`."""
    last = max((s for s in before if period["valid_from"] <= s), default=period["valid_from"])
    return {**period, "valid_to": t, "last_seen": min(period["last_seen"], last)}


def _same(a: dict, b: dict) -> bool:
    return all(a[c] == b[c] for c in VALUE_COLUMNS)


def _backfill_key(periods, seen, t, next_seen, before, run_id, complete):
    """One key's periods after a sighting `seen` (a staged row, or None: absent) at time `t`.

    `next_seen` is the source's first sighting after `t`, `before` its sightings before `t`.
    Returns `periods` itself when nothing changes."""
    holding = next(
        (
            p
            for p in periods
            if p["valid_from"] <= t and (p["valid_to"] is None or t < p["valid_to"])
        ),
        None,
    )

    def opened(values: dict, start, end, last=None) -> dict:
        template = holding or (periods[0] if periods else {})
        row = {**template, **{c: values[c] for c in KEY_COLUMNS}}
        row.update({c: values[c] for c in VALUE_COLUMNS})
        row.update(valid_from=start, valid_to=end, first_seen=start, last_seen=last or start,
                   first_run_id=run_id, last_run_id=run_id, dated=False)  # fmt: skip
        return row

    others = [p for p in periods if p is not holding]
    if seen is None:
        if holding is None or not complete:
            return periods
        # Absent at t: the period stops there and resumes at the next sighting if it was seen.
        head = _cut(holding, t, before)
        kept = [head]
        if next_seen is not None and holding["last_seen"] >= next_seen:
            kept.append({**holding, "valid_from": next_seen, "first_seen": next_seen})
        return sorted(others + kept, key=lambda p: p["valid_from"])
    if holding is not None and _same(holding, seen):
        if holding["first_seen"] <= t <= holding["last_seen"]:
            return periods
        grown = {**holding, "first_seen": min(holding["first_seen"], t),
                 "last_seen": max(holding["last_seen"], t)}  # fmt: skip
        return sorted(others + [grown], key=lambda p: p["valid_from"])
    if holding is not None:
        head = _cut(holding, t, before)
        if next_seen is not None and holding["last_seen"] >= next_seen:
            tail = {**holding, "valid_from": next_seen, "first_seen": next_seen}
            return sorted(others + [head, opened(seen, t, next_seen), tail],
                          key=lambda p: p["valid_from"])  # fmt: skip
        end, following = holding["valid_to"], None
        rest = others
    else:
        after = [p for p in periods if p["valid_from"] > t]
        following = min(after, key=lambda p: p["valid_from"], default=None)
        end = following["valid_from"] if following else None
        if next_seen is not None and (end is None or next_seen < end):
            end = next_seen  # the next run did not see the key: it closed there
        rest = periods
        head = None
    nxt = next((p for p in rest if p["valid_from"] == end), None) if end is not None else None
    if nxt is not None and _same(nxt, seen):
        # The next period holds the same price: it simply started earlier.
        merged = {**nxt, "valid_from": t, "first_seen": t, "first_run_id": run_id}
        kept = [p for p in rest if p is not nxt] + [merged]
    else:
        kept = list(rest) + [opened(seen, t, end)]
    if head is not None:
        kept.append(head)
    return sorted(kept, key=lambda p: p["valid_from"])


def open_warehouse(ctx_or_path=None, *, read_only: bool = False, **kwargs) -> Warehouse:
    """A Warehouse for a click context (its root's `obj["db"]`), a path, or None (the default)."""
    path = ctx_or_path
    if hasattr(ctx_or_path, "find_root"):
        obj = ctx_or_path.find_root().obj or {}
        path = obj.get("db")
    return Warehouse(path, read_only=read_only, **kwargs)
