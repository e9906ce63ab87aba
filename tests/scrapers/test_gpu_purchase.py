"""GPU purchase price history (excerpt of United-Compute's Keepa table): dated periods by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import gpu_purchase
from scrapers.base import LayoutError
from scrapers.refresh import refresh

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FILE = "gpu_purchase_price_history_excerpt.csv"


def test_over_http_as_dated_periods(wh, serve, fast_http, fixture_bytes):
    serve("gpu_purchase", "/rows.csv", fixture_bytes(FILE), content_type="text/csv")
    (result,) = refresh(wh, ["gpu_purchase"], http_factory=fast_http)
    assert result.status == "ok", result.error
    rows = wh.query(
        "SELECT price, valid_from, valid_to FROM price_history "
        "WHERE sku = 'NVIDIA H100 PCIe 80 GB' ORDER BY valid_from"
    ).rows()
    # Keepa prices: 34749.95 from 2023-12-02T13:32 (repeated 7 times), 25749.95 from
    # 2024-10-30T07:14, 27549.95 at the last sighting 2025-05-04T12:08:53.235671.
    assert rows == [
        (Decimal("34749.95"), datetime(2023, 12, 2, 13, 32), datetime(2024, 10, 30, 7, 14)),
        (
            Decimal("25749.95"),
            datetime(2024, 10, 30, 7, 14),
            datetime(2025, 5, 4, 12, 8, 53, 235671),
        ),
        (Decimal("27549.95"), datetime(2025, 5, 4, 12, 8, 53, 235671), None),
    ]
    # A40: 4099 held from 2022-09-04T06:40 through six repeats until 4599 on 2023-12-29T16:48.
    a40 = wh.query(
        "SELECT valid_to FROM price_history WHERE sku = 'NVIDIA A40 PCIe' AND price = 4099"
    ).rows()
    assert a40 == [(datetime(2023, 12, 29, 16, 48),)]


def test_out_of_stock_closes_the_period(fixture_bytes):
    # Keepa writes -1 when the listing has no offer.
    body = fixture_bytes(FILE).replace(
        b'""2024-03-24T18:04:00"":34749.95', b'""2024-03-24T18:04:00"":-1'
    )
    assert body != fixture_bytes(FILE)
    periods = [
        (r.price, r.valid_from, r.valid_to)
        for r in gpu_purchase.parse(body, NOW)
        if r.sku == "NVIDIA H100 PCIe 80 GB"
    ]
    utc = UTC
    assert periods[0] == (
        Decimal("34749.95"),
        datetime(2023, 12, 2, 13, 32, tzinfo=utc),
        datetime(2024, 3, 24, 18, 4, tzinfo=utc),
    )
    assert periods[1][1] == datetime(2024, 4, 8, 6, 0, tzinfo=utc)  # back in stock


def test_missing_column_is_a_layout_error(fixture_bytes):
    body = fixture_bytes(FILE).replace(b"price_history", b"prices", 1)
    with pytest.raises(LayoutError, match="price_history"):
        gpu_purchase.parse(body, NOW)
