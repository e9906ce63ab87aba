"""Lambda Cloud prices from SkyPilot's catalog CSV (excerpts of catalogs v6 and v7).

Expected values read by hand from tests/fixtures/prices/skypilot_lambda_vms_v{6,7}_excerpt.csv.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import lambda_cloud
from scrapers.base import LayoutError

NOW = datetime(2026, 11, 27, tzinfo=UTC)
V7 = "skypilot_lambda_vms_v7_excerpt.csv"
V6 = "skypilot_lambda_vms_v6_excerpt.csv"


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def test_v7_parse_to_the_cent(fixture_bytes):
    records = lambda_cloud.parse(fixture_bytes(V7), NOW)
    by = _by_key(records)
    gh200 = by[("gpu_1x_gh200", "us-east-1", "on_demand")]
    assert gh200.price == Decimal("1.49")
    assert (gh200.gpu_model, gh200.gpu_count, gh200.gpu_memory_gb) == ("GH200", 1.0, 96.0)
    assert (gh200.vcpus, gh200.ram_gb) == (64.0, 432.0)
    h100 = by[("gpu_8x_h100_sxm5", "us-west-1", "on_demand")]
    assert (h100.price, h100.gpu_model, h100.gpu_count) == (Decimal("23.92"), "H100-SXM", 8.0)
    assert h100.gpu_name_source == "H100"
    assert by[("gpu_1x_h100_pcie", "us-east-1", "on_demand")].gpu_model == "H100-PCIe"
    a100 = by[("gpu_1x_a100_sxm4", "europe-central-1", "on_demand")]
    assert (a100.price, a100.gpu_model, a100.gpu_memory_gb) == (Decimal("1.29"), "A100-40GB", 40.0)
    assert by[("gpu_8x_a100_80gb_sxm4", "us-east-1", "on_demand")].price == Decimal("14.32")
    assert all(r.kind == "gpu_instance" and r.unit == "usd_per_hour" for r in records)
    assert all(r.currency == "USD" and r.provider == "lambda" for r in records)
    # 18 GPU rows (6 types x 3 regions); SpotPrice is always empty; cpu_4x_general is skipped.
    assert len(records) == 18
    assert not any(r.term == "spot" for r in records)
    assert not any(r.sku.startswith("cpu_") for r in records)


def test_v6_has_the_older_gh200_price(fixture_bytes):
    by = _by_key(lambda_cloud.parse(fixture_bytes(V6), NOW))
    assert by[("gpu_1x_gh200", "us-east-1", "on_demand")].price == Decimal("3.19")


def test_fetch_over_http(serve, fast_http, fixture_bytes):
    url = serve("lambda", "/catalogs/v7/lambda/vms.csv", fixture_bytes(V7), content_type="text/csv")
    with fast_http("lambda") as http:
        captures = lambda_cloud.fetch(http)
    assert [c.url for c in captures] == [url]
    assert captures[0].body == fixture_bytes(V7)  # CRLF kept byte for byte
    assert len(lambda_cloud.parse(captures, NOW)) == 18


def test_refresh_v6_then_v7_records_the_gh200_change(wh, serve, fast_http, fixture_bytes):
    from scrapers.refresh import refresh

    serve("lambda", "/vms.csv", fixture_bytes(V6), content_type="text/csv")
    (first,) = refresh(wh, ["lambda"], http_factory=fast_http)
    assert first.status == "ok", first.error
    serve("lambda", "/vms.csv", fixture_bytes(V7), content_type="text/csv")
    (second,) = refresh(wh, ["lambda"], http_factory=fast_http)
    assert second.status == "ok", second.error
    # Only the three gh200 rows changed between the two catalogs.
    assert second.rows_changed == 3
    history = wh.query(
        "SELECT price FROM price_history WHERE source = 'lambda' AND sku = 'gpu_1x_gh200' "
        "AND region = 'us-east-1' ORDER BY valid_from"
    )
    assert [Decimal(p) for p in history["price"].to_list()] == [Decimal("3.19"), Decimal("1.49")]


def test_missing_column_is_a_layout_error(fixture_bytes):
    body = fixture_bytes(V7).replace(b"Price,Region", b"Cost,Region", 1)
    with pytest.raises(LayoutError, match="Price"):
        lambda_cloud.parse(body, NOW)


@pytest.mark.parametrize("bad", [b"NaN", b"-1", b"abc", b"-2.5", b"0", b"", b"inf"])
def test_bad_prices_are_dropped(fixture_bytes, bad):
    body = fixture_bytes(V7).replace(b",1.49,us-east-1,", b"," + bad + b",us-east-1,")
    by = _by_key(lambda_cloud.parse(body, NOW))
    assert ("gpu_1x_gh200", "us-east-1", "on_demand") not in by
    assert by[("gpu_1x_gh200", "us-west-1", "on_demand")].price == Decimal("1.49")


def test_absurd_magnitude_is_dropped(fixture_bytes):
    # 23.92 per GPU-hour x 1000: a per-GPU-hour bound of 500 x 8 GPUs catches it.
    body = fixture_bytes(V7).replace(b",23.92,us-east-1,", b",23920,us-east-1,")
    by = _by_key(lambda_cloud.parse(body, NOW))
    assert ("gpu_8x_h100_sxm5", "us-east-1", "on_demand") not in by
    assert ("gpu_8x_h100_sxm5", "us-west-1", "on_demand") in by
