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
            self._migrate(con)
            empty = con.execute("SELECT count(*) FROM price_periods").fetchall()[0][0] == 0
            if load_snapshot and empty and (SNAPSHOT_DIR / "manifest.json").exists():
                self._load_snapshot(con, SNAPSHOT_DIR)

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
    ) -> pl.DataFrame:
        """GPU instance and serverless prices with GPU attributes and USD per GPU-hour."""
        src, params = _price_source("gpu_offers", as_of)
        where, more = _filters(
            provider=provider, sku=sku, gpu_model=gpu_model, region=region, term=term
        )
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
        observed_at_quality: str = "exact",
    ) -> RunResult:
        """Store one scrape of `source` in one transaction: its run row, captures and prices.

        Undated records are a full picture of the source at `observed_at`: unchanged prices extend
        their period, changed ones close it and open a new one, and open periods of this source
        that are missing from the run are closed. Records with `valid_from` are stored as the
        periods they state. Records that fail a check, or a run that shrinks below `min_ratio`
        of the last ok run, give status 'rejected' and leave prices untouched.
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
                changed = _merge(con, source, run_id, observed)
                con.execute(
                    "UPDATE price_periods SET observed_at_quality = "
                    "CASE WHEN dated THEN 'exact' ELSE ? END WHERE first_run_id = ?",
                    [observed_at_quality, run_id],
                )
            finally:
                con.unregister("stage_arrow")
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
    last_ok = last_ok[0] if last_ok else None
    if last_ok and rows_seen < min_ratio * last_ok[0]:
        raise _Rejected(
            f"{rows_seen} prices is fewer than {min_ratio:g} x the {last_ok[0]} of the last ok "
            "run; refusing to close the missing ones (layout change?)"
        )
    latest = con.execute(
        "SELECT max(last_seen) FROM price_periods WHERE source = ? AND NOT dated", [source]
    ).fetchall()[0][0]
    if latest is not None and observed < latest:
        raise _Rejected(
            f"observed_at {observed} is older than this source's latest observation {latest}; "
            "history can only be extended forward"
        )


_KEY_MATCH = " AND ".join(f"s.{c} = p.{c}" for c in KEY_COLUMNS)
_SAME_VALUES = " AND ".join(f"s.{c} IS NOT DISTINCT FROM p.{c}" for c in VALUE_COLUMNS)
_INSERT_COLUMNS = ", ".join(KEY_COLUMNS + VALUE_COLUMNS)


def _merge(con, source: str, run_id: int, observed: datetime) -> int:
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
    counts = con.execute(
        "SELECT (SELECT count(*) FROM undated WHERE NOT same), "
        "(SELECT count(*) FROM dated WHERE NOT same), "
        "(SELECT count(*) FROM cur WHERE rid NOT IN (SELECT rid FROM undated WHERE rid IS NOT NULL "
        "UNION ALL SELECT rid FROM dated WHERE rid IS NOT NULL))"
    ).fetchall()[0]
    seen = [observed, run_id]
    # Periods that continue unchanged only move their last sighting.
    con.execute(
        "UPDATE price_periods SET last_seen = ?, last_run_id = ? "
        "WHERE rowid IN (SELECT rid FROM undated WHERE same UNION ALL "
        "SELECT rid FROM dated WHERE same)",
        seen,
    )
    # A changed undated price closes its period; a missing one closes too (it left the catalog).
    con.execute(
        "UPDATE price_periods SET valid_to = ? WHERE rowid IN ("
        "SELECT rid FROM undated WHERE rid IS NOT NULL AND NOT same UNION ALL "
        "SELECT rid FROM cur WHERE rid NOT IN (SELECT rid FROM undated WHERE rid IS NOT NULL "
        "UNION ALL SELECT rid FROM dated WHERE rid IS NOT NULL))",
        [observed],
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
        f"SELECT {_INSERT_COLUMNS}, ?, NULL, ?, ?, ?, ?, false FROM undated WHERE NOT same",
        [observed, observed, observed, run_id, run_id],
    )
    con.execute(
        f"INSERT INTO price_periods ({_INSERT_COLUMNS}, valid_from, valid_to, first_seen, "
        "last_seen, first_run_id, last_run_id, dated) "
        f"SELECT {_INSERT_COLUMNS}, valid_from, valid_to, ?, ?, ?, ?, true FROM dated WHERE rid IS NULL",
        [observed, observed, run_id, run_id],
    )
    con.execute("DROP TABLE cur; DROP TABLE undated; DROP TABLE dated")
    return sum(counts)


def open_warehouse(ctx_or_path=None, *, read_only: bool = False, **kwargs) -> Warehouse:
    """A Warehouse for a click context (its root's `obj["db"]`), a path, or None (the default)."""
    path = ctx_or_path
    if hasattr(ctx_or_path, "find_root"):
        obj = ctx_or_path.find_root().obj or {}
        path = obj.get("db")
    return Warehouse(path, read_only=read_only, **kwargs)
