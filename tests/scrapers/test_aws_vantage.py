"""AWS prices in every region from the dated vantage exports (tsaol/aws-gpu, MIT), and on-demand
plus per-zone spot from SkyPilot's AWS catalog (Apache-2.0).

Expected values read by hand from tests/fixtures/prices/aws_gpu_instances_vantage_*_excerpt.js
and skypilot_aws_vms_gpu_excerpt.csv (rows kept verbatim from the recorded files).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import aws_skypilot, aws_vantage
from scrapers.base import LayoutError

OLD, NEW = (
    "aws_gpu_instances_vantage_2025-11-30_excerpt.js",
    "aws_gpu_instances_vantage_2026-01-21_excerpt.js",
)
SKY = "skypilot_aws_vms_gpu_excerpt.csv"
DAY_OLD, DAY_NEW = datetime(2025, 11, 30, tzinfo=UTC), datetime(2026, 1, 21, tzinfo=UTC)


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def test_vantage_on_demand_and_reserved_per_region(fixture_bytes):
    got = _by_key(aws_vantage.parse(fixture_bytes(OLD), DAY_OLD))
    p5 = got[("p5.48xlarge", "us-east-1", "on_demand")]
    assert (p5.price, p5.currency, p5.gpu_model, p5.gpu_count) == (
        Decimal("55.04"),
        "USD",
        "H100-SXM",
        8.0,
    )
    assert ("p5.48xlarge", "us-east-1", "reserved_1y") not in got  # none published
    assert got[("p4d.24xlarge", "us-east-1", "reserved_1y")].price == Decimal("13.921094")
    assert got[("inf2.48xlarge", "ap-south-1", "on_demand")].gpu_model == "Inferentia2"
    assert got[("g2.2xlarge", "us-west-2", "on_demand")].gpu_model is None  # GRID K520: unmapped


def test_vantage_china_regions_are_cny_not_usd(fixture_bytes):
    got = _by_key(aws_vantage.parse(fixture_bytes(OLD), DAY_OLD))
    cn = got[("g4dn.xlarge", "cn-north-1", "on_demand")]
    assert (cn.price, cn.currency) == (Decimal("5.223"), "CNY")
    assert got[("g4dn.xlarge", "us-east-1", "on_demand")].currency == "USD"


def test_vantage_gb_and_gib_spellings_give_one_memory_figure(fixture_bytes):
    old = _by_key(aws_vantage.parse(fixture_bytes(OLD), DAY_OLD))
    new = _by_key(aws_vantage.parse(fixture_bytes(NEW), DAY_NEW))
    key = ("p5.48xlarge", "us-east-1", "on_demand")
    assert old[key].ram_gb == new[key].ram_gb == 2048.0  # "2048 GB" then "2048 GiB"


def test_vantage_last_updated_line_is_the_observation_date(fixture_bytes):
    assert aws_vantage.last_updated(fixture_bytes(OLD)) == "2025-11-30"
    assert aws_vantage.last_updated(fixture_bytes(NEW)) == "2026-01-21"


def test_two_dated_exports_make_a_history(wh, fixture_bytes):
    for day, name in ((DAY_OLD, OLD), (DAY_NEW, NEW)):
        records = aws_vantage.parse(fixture_bytes(name), day)
        result = wh.ingest_run("aws_vantage", records, started_at=day, observed_at=day)
        assert result.status == "ok"
    p5 = wh.price_history("p5.48xlarge").filter(region="us-east-1", term="on_demand")
    assert p5["valid_from"].to_list() == [datetime(2025, 11, 30)]  # one period, seen twice
    assert p5["last_seen"].to_list() == [datetime(2026, 1, 21)]
    assert p5["observed_at_quality"].to_list() == ["exact"]
    cn = wh.price_history("g4dn.xlarge").filter(region="cn-north-1", term="on_demand")
    assert cn["valid_to"].to_list() == [datetime(2026, 1, 21)]  # left the 2026 export


@pytest.mark.parametrize("body", [b"const x = 1;", b"const a = [1, 2];", b"const a = [{]};"])
def test_vantage_layout_changes_fail_loudly(body):
    with pytest.raises(LayoutError):
        aws_vantage.parse(body, DAY_OLD)


def test_vantage_fetched_over_http(serve, fast_http, fixture_bytes):
    serve("aws_vantage", "/data/all_gpu_instances.js", fixture_bytes(NEW),
          content_type="application/javascript")  # fmt: skip
    with fast_http("aws_vantage") as http:
        captures = aws_vantage.fetch(http)
    got = _by_key(aws_vantage.parse(captures, DAY_NEW))
    assert got[("p4d.24xlarge", "us-west-2", "reserved_1y")].price == Decimal("13.921092")


def test_skypilot_spot_is_the_cheapest_zone_of_the_region(fixture_bytes):
    got = _by_key(aws_skypilot.parse(fixture_bytes(SKY), DAY_OLD))
    # p4de us-east-1: zones az4 7.8074 and az6 5.8394 sell spot; the other rows have none.
    p4de = got[("p4de.24xlarge", "us-east-1", "spot")]
    assert (p4de.price, p4de.gpu_model, p4de.gpu_memory_gb) == (Decimal("5.8394"), "A100-80GB", 80)
    assert got[("p4de.24xlarge", "us-east-1", "on_demand")].price == Decimal("40.96575")
    assert got[("p5.48xlarge", "us-east-1", "on_demand")].price == Decimal("98.32")


def test_skypilot_empty_price_and_missing_accelerator(fixture_bytes):
    got = _by_key(aws_skypilot.parse(fixture_bytes(SKY), DAY_OLD))
    # p5e rows have an empty Price: their spot prices stay, no on-demand is invented.
    assert got[("p5e.48xlarge", "ap-southeast-3", "spot")].price == Decimal("14.925")
    assert not any(k[0] == "p5e.48xlarge" and k[2] == "on_demand" for k in got)
    # trn2 has no AcceleratorName in this version: its family says 16 Trainium2.
    trn2 = got[("trn2.48xlarge", "us-east-2", "on_demand")]
    assert (trn2.price, trn2.gpu_model, trn2.gpu_count) == (Decimal("85.964"), "Trainium2", 16.0)


def test_skypilot_aws_fetched_over_http(serve, fast_http, fixture_bytes):
    serve("aws_skypilot", "/catalogs/v7/aws/vms.csv", fixture_bytes(SKY), content_type="text/csv")
    with fast_http("aws_skypilot") as http:
        captures = aws_skypilot.fetch(http)
    assert len(aws_skypilot.parse(captures, DAY_OLD)) == len(
        aws_skypilot.parse(fixture_bytes(SKY), DAY_OLD)
    )


def test_skypilot_spot_rounded_above_the_on_demand_cap_is_left_out(fixture_bytes):
    got = _by_key(aws_skypilot.parse(fixture_bytes(SKY), DAY_OLD))
    assert got[("g5.48xlarge", "ap-northeast-2", "on_demand")].price == Decimal("20.02809")
    assert ("g5.48xlarge", "ap-northeast-2", "spot") not in got  # 20.0281 in every zone
