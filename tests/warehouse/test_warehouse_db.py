"""The warehouse's pure behaviour on in-memory and temporary databases: migrations, SCD2, as-of."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from warehouse.db import Warehouse
from warehouse.errors import ReadOnlySQLError, WarehouseError
from warehouse.migrations import MIGRATIONS
from warehouse.records import PriceRecord, RawCapture

T1 = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
T2 = datetime(2025, 1, 2, 3, 0, tzinfo=UTC)
T3 = datetime(2025, 1, 3, 3, 0, tzinfo=UTC)


def gpu(sku: str, price: str, *, source: str = "lambda", count: float = 8.0, **kw) -> PriceRecord:
    return PriceRecord(
        source=source,
        kind="gpu_instance",
        provider="lambda",
        sku=sku,
        region="us-east-1",
        term="on_demand",
        unit="usd_per_hour",
        price=Decimal(price),
        gpu_model="H100-SXM",
        gpu_count=count,
        **kw,
    )


def api(sku: str, unit: str, price: str, **kw) -> PriceRecord:
    return PriceRecord(
        source="litellm",
        kind="api_token",
        provider="openai",
        sku=sku,
        region="",
        term="on_demand",
        unit=unit,
        price=Decimal(price),
        **kw,
    )


@pytest.fixture
def wh():
    with Warehouse(":memory:", load_snapshot=False) as w:
        yield w


def ingest(wh, records, at, source="lambda", **kw):
    return wh.ingest_run(source, records, started_at=at, observed_at=at, **kw)


def periods(wh, sku):
    return wh.price_history(sku).select("price", "valid_from", "valid_to", "last_seen")


def test_migrations_from_empty_then_rerun_is_noop(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path, load_snapshot=False)
    first = Warehouse(path, read_only=True).migrations()
    assert first["name"].to_list() == [name for name, _ in MIGRATIONS]
    Warehouse(path, load_snapshot=False)  # second writable open: nothing left to apply
    again = Warehouse(path, read_only=True).migrations()
    assert again.equals(first)  # same names and the same applied_at: nothing re-ran


def test_unchanged_price_extends_period_instead_of_storing_again(wh):
    r1 = ingest(wh, [gpu("a", "23.92")], T1)
    r2 = ingest(wh, [gpu("a", "23.92")], T2)
    assert (r1.rows_changed, r2.rows_changed) == (1, 0)
    got = periods(wh, "a")
    assert got.height == 1
    assert got.row(0) == (Decimal("23.92"), T1.replace(tzinfo=None), None, T2.replace(tzinfo=None))


def test_changed_price_closes_period_and_opens_new_one(wh):
    ingest(wh, [gpu("a", "23.92")], T1)
    r2 = ingest(wh, [gpu("a", "19.99")], T2)
    assert r2.rows_changed == 1
    t1, t2 = T1.replace(tzinfo=None), T2.replace(tzinfo=None)
    assert periods(wh, "a").rows() == [
        (Decimal("23.92"), t1, t2, t1),
        (Decimal("19.99"), t2, None, t2),
    ]


def test_attribute_change_also_opens_a_period(wh):
    ingest(wh, [gpu("a", "10")], T1)
    ingest(wh, [gpu("a", "10", vcpus=208.0)], T2)
    assert periods(wh, "a").height == 2


def test_as_of_exactly_at_period_boundaries(wh):
    ingest(wh, [gpu("a", "23.92")], T1)
    ingest(wh, [gpu("a", "19.99")], T2)
    tick = timedelta(microseconds=1)

    def price_at(ts):
        return wh.prices(ts)["price"].to_list()

    assert price_at(T1 - tick) == []  # not observed yet
    assert price_at(T1) == [Decimal("23.92")]  # valid_from is inclusive
    assert price_at(T2 - tick) == [Decimal("23.92")]
    assert price_at(T2) == [Decimal("19.99")]  # valid_to is exclusive
    assert price_at(None) == [Decimal("19.99")]
    # A date means 00:00 UTC that day: the 03:00 change on Jan 2 is not yet in effect.
    assert price_at(date(2025, 1, 2)) == [Decimal("23.92")]
    assert price_at("2025-01-03") == [Decimal("19.99")]
    # An aware timestamp in another zone is converted to UTC: 04:00+01:00 is 03:00Z = T2.
    plus_one = datetime(2025, 1, 2, 4, 0, tzinfo=UTC).astimezone().replace(tzinfo=None)
    assert price_at("2025-01-02T04:00:00+01:00") == [Decimal("19.99")]
    assert plus_one  # silence linters about the helper above


def test_price_missing_from_later_run_closes_its_period(wh):
    ingest(wh, [gpu("a", "1"), gpu("b", "2")], T1)
    r = ingest(wh, [gpu("a", "1"), gpu("c", "3")], T2)
    assert r.rows_changed == 2  # b closed, c opened
    assert wh.prices()["sku"].to_list() == ["a", "c"]
    assert periods(wh, "b")["valid_to"].to_list() == [T2.replace(tzinfo=None)]


def test_other_sources_are_not_closed_by_a_run(wh):
    ingest(wh, [gpu("a", "1")], T1)
    ingest(wh, [gpu("z", "5", source="skypilot_lambda")], T2, source="skypilot_lambda")
    assert sorted(wh.prices()["sku"].to_list()) == ["a", "z"]


def test_shrunk_run_is_rejected_and_closes_nothing(wh):
    ingest(wh, [gpu(f"s{i}", "1") for i in range(10)], T1)
    before = wh.query("SELECT * FROM price_periods")
    r = ingest(wh, [gpu("s0", "2")], T2)
    assert r.status == "rejected"
    assert "fewer than 0.5 x the 10" in r.error
    assert wh.query("SELECT * FROM price_periods").equals(before)
    assert wh.run_info(r.run_id)["status"] == "rejected"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (gpu("a", "-1"), "not a finite Decimal >= 0"),
        (gpu("a", "NaN"), "not a finite Decimal >= 0"),
        (gpu("a", "1.0000000000001"), "do not fit"),  # 13 decimals would be rounded
        (
            PriceRecord(
                "lambda", "gpu_rental", "lambda", "a", "", "on_demand", "usd_per_hour", Decimal(1)
            ),
            "kind 'gpu_rental'",
        ),
        (
            PriceRecord(
                "lambda", "gpu_instance", "lambda", "a", "", "hourly", "usd_per_hour", Decimal(1)
            ),
            "term 'hourly'",
        ),
        (
            PriceRecord(
                "lambda", "gpu_instance", "lambda", "a", "", "on_demand", "usd_per_day", Decimal(1)
            ),
            "unit 'usd_per_day'",
        ),
    ],
)
def test_invalid_records_reject_the_run_and_keep_old_prices(wh, bad, message):
    ingest(wh, [gpu("a", "23.92"), gpu("b", "1")], T1)
    capture = RawCapture("lambda", "https://x.test/prices", T2, 200, b"{}")
    r = wh.ingest_run("lambda", [gpu("b", "1"), bad], [capture], started_at=T2, observed_at=T2)
    assert r.status == "rejected" and message in r.error
    assert wh.prices()["price"].to_list() == [Decimal("23.92"), Decimal("1")]
    assert wh.captures_for_run(r.run_id) == [capture]  # kept for a fixed parser


def test_duplicate_natural_key_in_one_run_is_rejected(wh):
    r = ingest(wh, [gpu("a", "1"), gpu("a", "2")], T1)
    assert r.status == "rejected" and "duplicate natural key" in r.error
    assert wh.prices().is_empty()


def test_failed_run_is_recorded_and_leaves_prices_intact(wh):
    ingest(wh, [gpu("a", "23.92")], T1)
    r = wh.record_failed_run("lambda", started_at=T2, error="LayoutError: no 'data' key")
    assert (r.status, r.rows_seen, r.error) == ("failed", 0, "LayoutError: no 'data' key")
    assert wh.prices()["price"].to_list() == [Decimal("23.92")]
    # The next ok run is compared with the last *ok* run, not the failed one.
    assert ingest(wh, [gpu("a", "23.92")], T3).status == "ok"


def test_an_older_observation_is_backfilled_at_its_own_date(wh):
    ingest(wh, [gpu("a", "1")], T2)
    r = ingest(wh, [gpu("a", "2")], T1)
    assert r.status == "ok"
    assert wh.prices()["price"].to_list() == [Decimal("1")]
    assert wh.prices(as_of=T1)["price"].to_list() == [Decimal("2")]


def test_dated_records_are_stored_as_stated_and_reingest_is_idempotent(wh):
    d = datetime  # the llm-prices history of a model: two periods
    history = [
        api("gpt-4o", "usd_per_mtok_input", "5", valid_from=d(2024, 5, 13), valid_to=d(2024, 8, 6)),
        api("gpt-4o", "usd_per_mtok_input", "2.5", valid_from=d(2024, 8, 6)),
    ]
    r1 = ingest(wh, history, T1, source="litellm")
    r2 = ingest(wh, history, T2, source="litellm")
    assert (r1.rows_changed, r2.rows_changed) == (2, 0)
    assert wh.prices("2024-06-01")["price"].to_list() == [Decimal("5")]
    assert wh.prices("2024-08-06")["price"].to_list() == [Decimal("2.5")]
    # The source later closes the open period and adds a new one.
    history[1] = api(
        "gpt-4o", "usd_per_mtok_input", "2.5", valid_from=d(2024, 8, 6), valid_to=d(2025, 6, 1)
    )
    history.append(api("gpt-4o", "usd_per_mtok_input", "2", valid_from=d(2025, 6, 1)))
    r3 = ingest(wh, history, T3, source="litellm")
    assert r3.rows_changed == 2
    assert periods(wh, "gpt-4o")["price"].to_list() == [Decimal("5"), Decimal("2.5"), Decimal("2")]
    assert wh.prices()["price"].to_list() == [Decimal("2")]


def test_gpu_offers_divide_instance_price_by_gpu_count(wh):
    ingest(wh, [gpu("gpu_8x_h100_sxm5", "23.92"), gpu("odd", "3", count=None)], T1)
    offers = wh.gpu_offers(gpu_model="h100").select("sku", "usd_per_hour", "usd_per_gpu_hour")
    # 23.92 USD/h for 8 GPUs (skypilot lambda catalog v7) is 2.99 USD per GPU-hour.
    assert offers.rows() == [("gpu_8x_h100_sxm5", 23.92, 2.99), ("odd", 3.0, None)]
    assert wh.gpu_offers(gpu_model="H10").is_empty()  # a prefix only matches at a '-' boundary


def test_api_prices_pivot_one_row_per_model(wh):
    records = [
        api("gpt-4o", "usd_per_mtok_input", "2.5", context_length=128000),
        api("gpt-4o", "usd_per_mtok_output", "10", context_length=128000),
        api("gpt-4o", "usd_per_mtok_cached_input", "1.25", context_length=128000),
        api("gpt-4o-mini", "usd_per_mtok_input", "0.15"),
    ]
    ingest(wh, records, T1, source="litellm")
    got = wh.api_prices().select(
        "model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "context_length"
    )
    assert got.rows() == [
        ("gpt-4o", Decimal("2.5"), Decimal("10"), Decimal("1.25"), 128000),
        ("gpt-4o-mini", Decimal("0.15"), None, None, None),
    ]


def test_query_refuses_writes_and_returns_last_statement(wh):
    with pytest.raises(ReadOnlySQLError, match="INSERT statements are refused"):
        wh.query(
            "SELECT 1; INSERT INTO scrape_runs (source, started_at, status) VALUES ('x', now(), 'ok')"
        )
    for sql in ("COPY scrape_runs TO 'x.csv'", "ATTACH 'x.db'", "CREATE TABLE t (x INT)"):
        with pytest.raises(ReadOnlySQLError):
            wh.query(sql)
    assert wh.query("SELECT ? AS x", [7]).to_dicts() == [{"x": 7}]
    with pytest.raises(WarehouseError, match="SQL: "):
        wh.query("SELECT * FROM no_such_table")


def test_captures_round_trip_and_identical_bodies_stored_once(wh):
    body = b'{"data": [1, 2, 3]}' * 100
    c1 = RawCapture("lambda", "https://x.test/a", T1, 200, body, "application/json")
    c2 = RawCapture("lambda", "https://x.test/a", T2, 200, body, "application/json")
    r1 = wh.ingest_run("lambda", [gpu("a", "1")], [c1], started_at=T1)
    r2 = wh.ingest_run("lambda", [gpu("a", "1")], [c2], started_at=T2)
    assert wh.run_info(r1.run_id)["observed_at"] == T1.replace(tzinfo=None)  # from the capture
    assert wh.captures_for_run(r1.run_id) == [c1]
    assert wh.captures_for_run(r2.run_id) == [c2]
    assert wh.query("SELECT count(*) AS n FROM capture_bodies")["n"][0] == 1


def test_snapshot_round_trip_preserves_periods(wh, tmp_path):
    ingest(wh, [gpu("a", "23.92")], T1)
    ingest(wh, [gpu("a", "19.99")], T2)
    manifest = wh.write_snapshot(tmp_path / "snap")
    assert '"lambda": 2' in manifest.read_text()
    fresh = Warehouse(tmp_path / "fresh.duckdb", load_snapshot=False)
    result = fresh.load_snapshot(tmp_path / "snap")
    assert (result.source, result.status, result.rows_seen) == ("snapshot", "ok", 2)
    assert periods(fresh, "a").equals(periods(wh, "a"))
    assert fresh.run_info(result.run_id)["observed_at"] == T2.replace(tzinfo=None)
    with pytest.raises(WarehouseError, match="already holds prices"):
        fresh.load_snapshot(tmp_path / "snap")
    # A live run of the same source continues the snapshot's periods.
    assert ingest(fresh, [gpu("a", "19.99")], T3).rows_changed == 0


def test_fresh_database_loads_shipped_snapshot(tmp_path):
    ro = Warehouse(tmp_path / "new.duckdb", read_only=True)  # does not exist yet
    runs = ro.query("SELECT source FROM scrape_runs")["source"].to_list()
    assert runs == ["snapshot"]
    # The shipped snapshot carries Lambda's 8x H100 SXM5 at 23.92 USD/h in us-east-1
    # (skypilot catalog v7, skypilot_lambda_vms_11580132.csv).
    h100 = ro.gpu_offers(provider="lambda", sku="gpu_8x_h100_sxm5", region="us-east-1")
    assert h100["price"].to_list() == [Decimal("23.92")]
    assert h100["usd_per_gpu_hour"].to_list() == [pytest.approx(2.99)]


def test_read_only_warehouse_refuses_writes(tmp_path):
    Warehouse(tmp_path / "w.duckdb", load_snapshot=False)
    ro = Warehouse(tmp_path / "w.duckdb", read_only=True)
    with pytest.raises(WarehouseError, match="opened read-only"):
        ingest(ro, [gpu("a", "1")], T1)


def test_record_sim_run_replaces_same_run_id(wh):
    summaries = pl.DataFrame(
        {"fleet": ["api"], "kind": ["api"], "metric": ["cost_usd"], "value": [12.5]}
    )
    timeseries = pl.DataFrame(
        {
            "replication": [0, 0],
            "fleet": ["api", "api"],
            "window_start_s": [0.0, 60.0],
            "metric": ["rps", "rps"],
            "value": [1.0, 2.0],
        }
    )
    for _ in range(2):
        wh.record_sim_run(
            "r1",
            scenario="peak",
            started_at=T1,
            config_json="{}",
            summaries=summaries,
            timeseries=timeseries,
        )
    assert wh.query("SELECT value FROM sim_summaries")["value"].to_list() == [12.5]
    assert wh.query("SELECT count(*) AS n FROM sim_timeseries")["n"][0] == 2


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("INFERCOST_DB", str(tmp_path / "x.duckdb"))
    assert Warehouse.default_path() == tmp_path / "x.duckdb"
    monkeypatch.delenv("INFERCOST_DB")
    assert Warehouse.default_path().name == "infercost.duckdb"


def test_read_only_open_of_an_older_database_applies_the_missing_migrations(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    Warehouse(path, load_snapshot=False).close()
    # Make it look like a file written before 0003_sim_results shipped.
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE sim_timeseries; DROP TABLE sim_summaries; DROP TABLE sim_runs")
    con.execute("DELETE FROM schema_migrations WHERE name = '0003_sim_results'")
    con.close()
    ro = Warehouse(path, read_only=True, load_snapshot=False)
    assert "0003_sim_results" in ro.migrations()["name"].to_list()
    assert ro.query("SELECT count(*) AS n FROM sim_runs")["n"].to_list() == [0]
