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


def _reserved(code, length, option, offering_class, dims):
    return {"offerTermCode": code, "sku": P4D, "effectiveDate": "2024-05-01T00:00:00Z",
            "priceDimensions": {f"{P4D}.{code}.{i}": d for i, d in enumerate(dims)},
            "termAttributes": {"LeaseContractLength": length, "OfferingClass": offering_class,
                               "PurchaseOption": option}}  # fmt: skip


def _hourly(usd):
    return {"unit": "Hrs", "description": "reserved hourly", "pricePerUnit": {"USD": usd}}


def _with_reserved(data, fee_dim):
    """The p4d SKU with reserved offers shaped like the offer files' `terms.Reserved`; the
    "Upfront Fee" dimension is the real one from the us-east-2 excerpt, with its price changed."""

    def fee(usd):
        return {**fee_dim, "pricePerUnit": {"USD": usd}}

    data["terms"]["Reserved"] = {
        P4D: {
            "A": _reserved("A", "1yr", "No Upfront", "standard", [_hourly("19.2227000000")]),
            "B": _reserved("B", "1yr", "Partial Upfront", "standard",
                           [_hourly("9.1500000000"), fee("80154")]),
            "C": _reserved("C", "3yr", "All Upfront", "standard",
                           [_hourly("0.0000000000"), fee("297000")]),
            # All Upfront with no hourly dimension at all, as in the us-east-2 file.
            "D": _reserved("D", "3yr", "All Upfront", "convertible", [fee("350000")]),
            "E": _reserved("E", "1yr", "Partial Upfront", "standard", [_hourly("9.15")]),
        }
    }  # fmt: skip
    return data


def test_reserved_terms_each_upfront_option_amortised(fixture_json):
    east2 = fixture_json(EAST2)
    (fee_offer,) = east2["terms"]["OnDemand"]["8D49XP354UEYTHGM"].values()
    (fee_dim,) = fee_offer["priceDimensions"].values()
    assert fee_dim["description"] == "Upfront Fee" and fee_dim["unit"] == "Quantity"
    by = {
        r.term: (r.price, r.upfront) for r in _parse(_with_reserved(fixture_json(EAST1), fee_dim))
    }
    assert by == {
        "on_demand": (Decimal("32.7726"), None),
        "reserved_1y": (Decimal("19.2227"), None),
        # 9.15 + 80154 / 8760 h = 9.15 + 9.15 (to the micro-dollar)
        "reserved_1y_partial_upfront": (Decimal("18.3"), Decimal("80154")),
        # 297000 / 26280 h = 11.301370 (rounded half-even to 1e-6)
        "reserved_3y_all_upfront": (Decimal("11.30137"), Decimal("297000")),
        "reserved_convertible_3y_all_upfront": (Decimal("13.318113"), Decimal("350000")),
    }  # offer E (partial upfront without its fee) is dropped, not priced as its hourly part


def test_stream_parse_of_a_file_equals_parse_of_bytes(fixture_bytes, tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(fixture_bytes(EAST1))
    with path.open("rb") as stream:
        assert aws.parse_offer_stream(stream) == aws.parse(fixture_bytes(EAST1), NOW)


def test_truncated_offer_file_is_a_layout_error(fixture_bytes):
    with pytest.raises(LayoutError, match="not JSON"):
        aws.parse(fixture_bytes(EAST1)[:3000], NOW)


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
