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
