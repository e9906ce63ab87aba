"""How trustworthy each observation date is, and reserved upfront fees, stored per period."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from warehouse import Warehouse
from warehouse.errors import WarehouseError
from warehouse.records import PriceRecord

DAY1, DAY2 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)


def _offer(price: str, term: str = "on_demand", upfront: str | None = None) -> PriceRecord:
    return PriceRecord(source="aws", kind="gpu_instance", provider="aws", sku="p5.48xlarge",
                       region="us-east-1", term=term, unit="usd_per_hour", price=Decimal(price),
                       gpu_model="H100-SXM", gpu_count=8.0,
                       upfront=None if upfront is None else Decimal(upfront))  # fmt: skip


@pytest.fixture
def wh():
    with Warehouse(":memory:", load_snapshot=False) as warehouse:
        yield warehouse


def test_quality_is_stored_on_the_periods_a_run_opens(wh):
    wh.ingest_run("aws", [_offer("98.32")], started_at=DAY1, observed_at=DAY1,
                  observed_at_quality="approximate")  # fmt: skip
    wh.ingest_run("aws", [_offer("55.04")], started_at=DAY2, observed_at=DAY2,
                  observed_at_quality="exact")  # fmt: skip
    history = wh.price_history("p5.48xlarge")
    assert history["observed_at_quality"].to_list() == ["approximate", "exact"]
    assert history["price"].to_list() == [Decimal("98.32"), Decimal("55.04")]


def test_a_continued_period_keeps_the_quality_of_its_start(wh):
    wh.ingest_run("aws", [_offer("55.04")], started_at=DAY1, observed_at=DAY1,
                  observed_at_quality="release_date")  # fmt: skip
    wh.ingest_run("aws", [_offer("55.04")], started_at=DAY2, observed_at=DAY2)
    (quality,) = wh.price_history("p5.48xlarge")["observed_at_quality"].to_list()
    assert quality == "release_date"


def test_a_stated_period_is_exact_whatever_the_run_says(wh):
    stated = PriceRecord(source="llm_prices", kind="api_token", provider="deepseek",
                         sku="deepseek-chat", region="", term="on_demand",
                         unit="usd_per_mtok_input", price=Decimal("0.27"),
                         valid_from=datetime(2025, 2, 8, tzinfo=UTC))  # fmt: skip
    wh.ingest_run("llm_prices", [stated], started_at=DAY2, observed_at=DAY2,
                  observed_at_quality="release_date")  # fmt: skip
    assert wh.price_history("deepseek-chat")["observed_at_quality"].to_list() == ["exact"]


def test_unknown_quality_is_refused_before_anything_is_stored(wh):
    with pytest.raises(WarehouseError, match="observed_at_quality"):
        wh.ingest_run("aws", [_offer("1")], started_at=DAY1, observed_at_quality="guess")
    assert wh.runs().is_empty()


def test_upfront_survives_a_snapshot_round_trip(wh, tmp_path):
    records = [_offer("55.04"), _offer("30.5", "reserved_1y_partial_upfront", "133152")]
    wh.ingest_run("aws", records, started_at=DAY1, observed_at=DAY1)
    wh.write_snapshot(tmp_path)
    with Warehouse(":memory:", load_snapshot=False) as fresh:
        fresh.load_snapshot(tmp_path)
        history = fresh.price_history("p5.48xlarge")
    assert dict(zip(history["term"], history["upfront"], strict=True)) == {
        "on_demand": None,
        "reserved_1y_partial_upfront": Decimal("133152"),
    }
    assert history["observed_at_quality"].to_list() == ["exact", "exact"]


def test_an_upfront_change_alone_opens_a_new_period(wh):
    term = "reserved_3y_all_upfront"
    wh.ingest_run("aws", [_offer("11.3", term, "297000")], started_at=DAY1, observed_at=DAY1)
    wh.ingest_run("aws", [_offer("11.3", term, "296000")], started_at=DAY2, observed_at=DAY2)
    assert wh.price_history("p5.48xlarge")["upfront"].to_list() == [
        Decimal("297000"),
        Decimal("296000"),
    ]
