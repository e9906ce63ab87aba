"""AWS EC2 offer files: the plain Linux on-demand row wins, hourly only, currency kept.

Expected values read by hand from tests/fixtures/prices/aws_offer_*_excerpt.json
(opencost test data, Apache-2.0). Mutated copies are built in the tests.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import aws
from scrapers.base import LayoutError

NOW = datetime(2026, 11, 27, tzinfo=UTC)
EAST1 = "aws_offer_us-east-1_excerpt.json"
EAST2 = "aws_offer_us-east-2_excerpt.json"
CN = "aws_offer_cn-northwest-1_excerpt.json"
P4D, P4D_CB = "H7NGEAC6UEHNTKSJ", "YSXJGN78QTXNVGDQ"  # plain and Capacity Block SKUs


def _parse(data) -> list:
    return aws.parse(json.dumps(data).encode(), NOW)


def _dimension(offer_file, sku):
    (offer,) = offer_file["terms"]["OnDemand"][sku].values()
    (dim,) = offer["priceDimensions"].values()
    return dim


def test_us_east_1_p4d_to_the_cent(fixture_bytes):
    (record,) = aws.parse(fixture_bytes(EAST1), NOW)
    assert (record.sku, record.region, record.term) == ("p4d.24xlarge", "us-east-1", "on_demand")
    assert record.price == Decimal("32.7726")  # "32.7726000000" USD per Hrs
    assert (record.currency, record.unit) == ("USD", "usd_per_hour")
    assert (record.gpu_model, record.gpu_count, record.gpu_memory_gb) == ("A100-40GB", 8.0, 40.0)
    assert (record.vcpus, record.ram_gb) == (96.0, 1152.0)


def test_zero_capacity_block_twin_never_wins(fixture_json):
    data = fixture_json(EAST1)
    # Make the $0 twin indistinguishable by attributes: the zero price alone must lose.
    data["products"][P4D_CB]["attributes"].update(operation="RunInstances", marketoption="OnDemand")
    (record,) = _parse(data)
    assert record.price == Decimal("32.7726")


def test_duplicate_rows_keep_the_lowest_price(fixture_json):
    data = fixture_json(EAST1)
    data["products"][P4D_CB]["attributes"].update(operation="RunInstances", marketoption="OnDemand")
    _dimension(data, P4D_CB)["pricePerUnit"]["USD"] = "40.0000000000"
    (record,) = _parse(data)
    assert record.price == Decimal("32.7726")


def test_us_east_2_windows_byol_gpu_and_non_gpu_rows_skipped(fixture_bytes):
    # p3.8xlarge is Windows BYOL ($12.24); m5.large, gp3 storage and the NLB are not GPUs.
    assert aws.parse(fixture_bytes(EAST2), NOW) == []


def test_upfront_fee_inside_on_demand_is_not_hourly(fixture_json):
    data = fixture_json(EAST2)
    attrs = data["products"]["9ZEEN7WWWQKAG292"]["attributes"]
    attrs.update(
        operatingSystem="Linux", licenseModel="No License required", operation="RunInstances"
    )
    # Move the real "Upfront Fee" (unit Quantity, USD 1161) under the GPU instance's OnDemand.
    data["terms"]["OnDemand"]["9ZEEN7WWWQKAG292"].update(
        data["terms"]["OnDemand"]["8D49XP354UEYTHGM"]
    )
    (record,) = _parse(data)
    assert (record.sku, record.price) == ("p3.8xlarge", Decimal("12.24"))
    assert (record.gpu_model, record.gpu_count) == ("V100", 4.0)


def test_cny_is_kept_as_cny(fixture_json):
    data = fixture_json(CN)
    p4d = copy.deepcopy(fixture_json(EAST1))
    product = p4d["products"][P4D]
    product["attributes"].update(regionCode="cn-northwest-1", location="China (Ningxia)")
    data["products"][P4D] = product
    data["terms"]["OnDemand"][P4D] = p4d["terms"]["OnDemand"][P4D]
    _dimension(data, P4D)["pricePerUnit"] = {"CNY": "250.1234000000"}
    (record,) = _parse(data)
    assert (record.region, record.currency, record.price) == (
        "cn-northwest-1",
        "CNY",
        Decimal("250.1234"),
    )


def test_reserved_no_upfront_is_hourly_and_upfront_options_skipped(fixture_json):
    data = fixture_json(EAST1)
    dim = copy.deepcopy(_dimension(data, P4D))
    dim["pricePerUnit"]["USD"] = "19.2227000000"

    def term(code, length, option, price_dim):
        return {"offerTermCode": code, "sku": P4D, "priceDimensions": {f"{code}.d": price_dim},
                "termAttributes": {"LeaseContractLength": length, "OfferingClass": "standard",
                                   "PurchaseOption": option}}  # fmt: skip

    fee = {"unit": "Quantity", "pricePerUnit": {"USD": "168000"}, "description": "Upfront Fee"}
    data["terms"]["Reserved"] = {
        P4D: {"A": term("A", "1yr", "No Upfront", dim), "B": term("B", "3yr", "All Upfront", fee)}
    }
    by = {r.term: r.price for r in _parse(data)}
    assert by == {"on_demand": Decimal("32.7726"), "reserved_1y": Decimal("19.2227")}


@pytest.mark.parametrize("bad", ["abc", "-1", "NaN", "", "0.0000000000", "327726.0000000000"])
def test_bad_or_absurd_prices_dropped(fixture_json, bad):
    data = fixture_json(EAST1)
    _dimension(data, P4D)["pricePerUnit"]["USD"] = bad
    assert _parse(data) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("products"),
        lambda d: d.pop("terms"),
        lambda d: d["products"][P4D].pop("attributes"),
        lambda d: d["products"][P4D]["attributes"].pop("instanceType"),
        lambda d: _dimension(d, P4D).pop("pricePerUnit"),
    ],
)
def test_layout_changes_fail_loudly(fixture_json, mutate):
    data = fixture_json(EAST1)
    mutate(data)
    with pytest.raises(LayoutError):
        _parse(data)


def test_fetch_region_index_then_offer_files(httpserver, monkeypatch, fast_http, fixture_bytes):
    base = "/offers/v1.0/aws/AmazonEC2"
    index = {
        "formatVersion": "v1.0",
        "regions": {
            "us-east-1": {"regionCode": "us-east-1",
                          "currentVersionUrl": f"{base}/20240528203522/us-east-1/index.json"},
            "cn-northwest-1": {"regionCode": "cn-northwest-1",
                               "currentVersionUrl": f"{base}/20230314154740/cn-northwest-1/index.json"},
        },
    }  # fmt: skip
    httpserver.expect_request(f"{base}/current/region_index.json").respond_with_json(index)
    httpserver.expect_request(f"{base}/20240528203522/us-east-1/index.json").respond_with_data(
        fixture_bytes(EAST1), content_type="application/json"
    )
    httpserver.expect_request(f"{base}/20230314154740/cn-northwest-1/index.json").respond_with_data(
        fixture_bytes(CN), content_type="application/json"
    )
    monkeypatch.setenv("INFERCOST_AWS_URL", httpserver.url_for(f"{base}/current/region_index.json"))
    monkeypatch.setenv("INFERCOST_AWS_REGIONS", "us-east-1,cn-northwest-1,eu-west-9")
    with fast_http("aws") as http:
        captures = aws.fetch(http)
    assert len(captures) == 3  # the index and two offer files; eu-west-9 is not listed
    (record,) = aws.parse(captures, NOW)
    assert (record.sku, record.price) == ("p4d.24xlarge", Decimal("32.7726"))


def test_fetch_single_offer_file(serve, fast_http, fixture_bytes):
    serve("aws", "/us-east-1/index.json", fixture_bytes(EAST1))
    with fast_http("aws") as http:
        captures = aws.fetch(http)
    assert len(captures) == 1 and len(aws.parse(captures, NOW)) == 1


def test_only_a_region_index_is_a_layout_error():
    with pytest.raises(LayoutError):
        aws.parse(b'{"regions": {}}', NOW)
