"""Backfill: an older run lands at its own date, and ingest order never changes the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.db import Warehouse
from warehouse.records import PriceRecord

START = datetime(2025, 1, 1, 3, tzinfo=UTC)
SKUS = ("a", "b", "c")


def record(sku: str, price: str) -> PriceRecord:
    return PriceRecord(
        "t", "gpu_instance", "p", sku, "", "on_demand", "usd_per_hour", Decimal(price)
    )


def ingest(wh, night: int, prices: dict[str, str | None]):
    at = START + timedelta(days=night)
    records = [record(sku, p) for sku, p in prices.items() if p is not None]
    return wh.ingest_run("t", records, started_at=at, observed_at=at, min_ratio=0.0)


def history(wh) -> list[tuple]:
    return wh.query(
        "SELECT sku, valid_from, valid_to, price FROM price_periods ORDER BY sku, valid_from"
    ).rows()


def test_a_run_inside_a_period_splits_it_without_touching_later_periods():
    with Warehouse(":memory:", load_snapshot=False) as wh:
        ingest(wh, 0, {"a": "1"})
        ingest(wh, 2, {"a": "1"})
        ingest(wh, 4, {"a": "3"})
        assert ingest(wh, 1, {"a": "2"}).status == "ok"  # night 1, fixed by a later reparse
        day = [START + timedelta(days=n) for n in range(5)]
        assert [(r[1], r[2], r[3]) for r in history(wh)] == [
            (day[0].replace(tzinfo=None), day[1].replace(tzinfo=None), Decimal(1)),
            (day[1].replace(tzinfo=None), day[2].replace(tzinfo=None), Decimal(2)),
            (day[2].replace(tzinfo=None), day[4].replace(tzinfo=None), Decimal(1)),
            (day[4].replace(tzinfo=None), None, Decimal(3)),
        ]


nights = st.lists(
    st.fixed_dictionaries({sku: st.sampled_from([None, "1", "2"]) for sku in SKUS}),
    min_size=1,
    max_size=5,
)


@settings(max_examples=15, deadline=None)
@given(observed=nights, order=st.randoms(use_true_random=False))
def test_any_ingest_order_gives_the_date_order_history(observed, order):
    with Warehouse(":memory:", load_snapshot=False) as in_order:
        for n, prices in enumerate(observed):
            assert ingest(in_order, n, prices).status == "ok"
        expected = history(in_order)
    shuffled = list(enumerate(observed))
    order.shuffle(shuffled)
    with Warehouse(":memory:", load_snapshot=False) as wh:
        for n, prices in shuffled:
            assert ingest(wh, n, prices).status == "ok"
        assert history(wh) == expected


def test_reparse_of_an_older_run_is_backfilled_at_its_own_date(tmp_path):
    """`sim prices reparse` of a run older than the newest observation splits history there."""
    from click.testing import CliRunner

    from sim.cli import cli
    from warehouse.records import RawCapture

    db = tmp_path / "w.duckdb"
    old, new = START, START + timedelta(days=10)
    with Warehouse(db, load_snapshot=False) as wh:
        capture = RawCapture("modal", "https://modal.test/pricing", old, 200, b"<html></html>")
        # The first night failed (parser broken then); its response is kept.
        failed = wh.record_failed_run("modal", started_at=old, error="layout", captures=[capture])
        gpu = PriceRecord("modal", "gpu_serverless", "modal", "H100", "", "on_demand",
                          "usd_per_second", Decimal("0.001097"), gpu_model="H100-SXM", gpu_count=1.0)  # fmt: skip
        assert wh.ingest_run("modal", [gpu], started_at=new, observed_at=new).status == "ok"

    def fixed_parse(raw, fetched_at):
        return [
            PriceRecord("modal", "gpu_serverless", "modal", "H100", "", "on_demand",
                        "usd_per_second", Decimal("0.001267"), gpu_model="H100-SXM", gpu_count=1.0)
        ]  # fmt: skip

    import scrapers.modal

    original = scrapers.modal.parse
    scrapers.modal.parse = fixed_parse
    try:
        result = CliRunner().invoke(cli, ["--db", str(db), "prices", "reparse", str(failed.run_id)])
    finally:
        scrapers.modal.parse = original
    assert result.exit_code == 0, result.output
    with Warehouse(db, read_only=True) as wh:
        rows = [(r[1], r[2], r[3]) for r in history(wh)]
    naive = [t.replace(tzinfo=None) for t in (old, new)]
    assert rows == [
        (naive[0], naive[1], Decimal("0.001267")),
        (naive[1], None, Decimal("0.001097")),
    ]
