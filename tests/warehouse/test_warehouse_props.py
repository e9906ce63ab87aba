"""Property tests: exact round trips of Decimal prices and timestamps, and SCD2 invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.db import Warehouse
from warehouse.records import PriceRecord, RawCapture

# Everything DECIMAL(24,12) holds exactly: 12 integer digits and 12 fractional digits.
prices = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal("999999999999.999999999999"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def record(sku: str, price: Decimal, **kw) -> PriceRecord:
    return PriceRecord("t", "gpu_purchase", "p", sku, "", "purchase", "usd", price, **kw)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(prices, min_size=1, max_size=20), at=timestamps)
def test_decimal_prices_and_timestamps_round_trip_exactly(values, at):
    with Warehouse(":memory:", load_snapshot=False) as wh:
        records = [record(f"s{i}", v) for i, v in enumerate(values)]
        assert wh.ingest_run("t", records, started_at=at, observed_at=at).status == "ok"
        got = wh.prices(as_of=at).sort("sku")
        by_sku = dict(zip(got["sku"].to_list(), got["price"].to_list(), strict=True))
        assert [by_sku[f"s{i}"] for i in range(len(values))] == values
        assert set(got["valid_from"].to_list()) == {at.replace(tzinfo=None)}


@settings(max_examples=25, deadline=None)
@given(body=st.binary(max_size=2000), at=timestamps, status=st.integers(100, 599))
def test_capture_bodies_and_times_round_trip(body, at, status):
    with Warehouse(":memory:", load_snapshot=False) as wh:
        capture = RawCapture("t", "https://x.test/", at, status, body, None)
        run = wh.record_failed_run("t", started_at=at, error="boom", captures=[capture])
        assert wh.captures_for_run(run.run_id) == [capture]


@settings(max_examples=20, deadline=None)
@given(
    nights=st.lists(
        st.lists(st.sampled_from(["1", "2", "3"]), min_size=3, max_size=3), min_size=1, max_size=8
    )
)
def test_as_of_every_night_returns_that_nights_prices(nights):
    """However prices move, as-of each observation time gives back exactly what was observed."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with Warehouse(":memory:", load_snapshot=False) as wh:
        for n, night in enumerate(nights):
            at = start + timedelta(days=n)
            records = [record(f"s{i}", Decimal(p)) for i, p in enumerate(night)]
            assert wh.ingest_run("t", records, started_at=at, observed_at=at).status == "ok"
        for n, night in enumerate(nights):
            got = wh.prices(start + timedelta(days=n)).sort("sku")["price"].to_list()
            assert got == [Decimal(p) for p in night]
        # Periods of one key never overlap and only the last is open.
        history = wh.query(
            "SELECT sku, valid_from, valid_to FROM price_periods ORDER BY sku, valid_from"
        )
        for sku in ("s0", "s1", "s2"):
            rows = history.filter(history["sku"] == sku).rows()
            assert all(a[2] == b[1] for a, b in zip(rows, rows[1:], strict=False))
            assert rows[-1][2] is None
