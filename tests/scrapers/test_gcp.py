"""GCP Cloud Billing SKUs: per-GPU-hour prices, the pricing type from the description.

Expected values read by hand from tests/fixtures/prices/gcp_billing_skus.json (opencost test
data, Apache-2.0) and gcp_billing_gpu_skus_excerpt.json (18 of 1632 real GPU SKUs, 2025-06).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import gcp
from scrapers.base import LayoutError, SkipSource

NOW = datetime(2026, 11, 27, tzinfo=UTC)
PAGE = "gcp_billing_skus.json"
GPU = "gcp_billing_gpu_skus_excerpt.json"


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def _parse(data):
    return gcp.parse(json.dumps(data).encode(), NOW)


def test_api_page_a100_in_its_service_regions(fixture_bytes):
    records = [r for r in gcp.parse(fixture_bytes(PAGE), NOW) if r.unit == "usd_per_gpu_hour"]
    # "Nvidia Tesla A100 GPU running in Americas": units "2" + nanos 933908000.
    assert {r.region for r in records} == {"us-central1", "us-east1", "us-west1"}
    for r in records:
        assert (r.sku, r.term, r.price) == ("nvidia-tesla-a100", "on_demand", Decimal("2.933908"))
        assert (r.gpu_count, r.gpu_model, r.gpu_memory_gb) == (1.0, "A100-40GB", 40.0)
    # The E2/T2D core and RAM SKUs (some priced in IDR) are not GPU offers.
    assert len(records) == 3


def test_machine_types_priced_from_core_ram_and_gpu(fixture_bytes):
    by = _by_key(r for r in gcp.parse(fixture_bytes(PAGE), NOW) if r.unit == "usd_per_hour")
    # A2 core 0.031611/vCPU-h, A2 RAM 0.004237/GiB-h, A100 2.933908/GPU-h (all "Americas"):
    # a2-highgpu-1g = 12 x 0.031611 + 85 x 0.004237 + 2.933908 = 3.673385, GCP's list price.
    one = by[("a2-highgpu-1g", "us-central1", "on_demand")]
    assert one.price == Decimal("3.673385")
    assert (one.gpu_count, one.vcpus, one.ram_gb, one.gpu_model) == (1.0, 12.0, 85.0, "A100-40GB")
    # 96 x 0.031611 + 680 x 0.004237 + 8 x 2.933908 = 29.38708
    assert by[("a2-highgpu-8g", "us-west1", "on_demand")].price == Decimal("29.38708")
    # No A100 80GB SKU on this page: no a2-ultragpu; no G2 parts: no g2-standard.
    assert not any(sku.startswith(("a2-ultragpu", "g2-")) for sku, *_ in by)
    # 5 A2 machine types (highgpu 1/2/4/8g, megagpu-16g) x 3 regions.
    assert len(by) == 15


def test_machine_needs_every_part(fixture_json):
    data = fixture_json(PAGE)
    data["skus"] = [
        s for s in data["skus"] if s["description"] != "A2 Instance Ram running in Americas"
    ]
    assert all(r.unit == "usd_per_gpu_hour" for r in _parse(data))


def test_gpu_skus_terms_to_the_cent(fixture_bytes):
    by = _by_key(gcp.parse(fixture_bytes(GPU), NOW))
    a100 = "nvidia-tesla-a100"
    assert by[(a100, "Americas", "on_demand")].price == Decimal("2.933908")
    assert by[(a100, "Americas", "spot")].price == Decimal("1.1472")
    assert by[(a100, "Americas", "commitment_1y")].price == Decimal("1.84836204")
    assert by[(a100, "Americas", "commitment_3y")].price == Decimal("1.0268678")  # "for 3 Year"
    h100 = "nvidia-h100-80gb"
    assert by[(h100, "us-east4", "on_demand")].price == Decimal("9.796551")  # Virginia
    assert by[(h100, "us-east4", "on_demand")].gpu_model == "H100-SXM"
    assert by[(h100, "us-east4", "commitment_3y")].price == Decimal("4.299899")  # "for 3 Years"
    assert by[(h100, "us-east4", "commitment_1y")].price == Decimal("6.798809")
    assert by[(h100, "us-east4", "spot")].price == Decimal("1.7632")
    assert by[("nvidia-l4", "europe-west1", "on_demand")].price == Decimal("0.6166603")  # Belgium
    assert by[("nvidia-l4", "europe-west1", "spot")].price == Decimal("0.1984")


def test_reserved_calendar_dws_and_licences_skipped(fixture_bytes):
    records = gcp.parse(fixture_bytes(GPU), NOW)
    # 18 SKUs: 3 DWS, 1 Reserved (0), 1 Reserved calendar mode, 1 licence fee are skipped.
    assert len(records) == 12
    assert {r.term for r in records} == {"on_demand", "spot", "commitment_1y", "commitment_3y"}
    assert Decimal("1.613649") not in {r.price for r in records}  # A100 DWS price


def test_non_usd_currency_kept_and_bounded_in_usd(fixture_json):
    data = fixture_json(PAGE)
    a100 = next(s for s in data["skus"] if s["description"].startswith("Nvidia Tesla A100"))
    info = a100["pricingInfo"][0]
    info["currencyConversionRate"] = 14999.999925  # IDR per USD, as in the T2D SKUs
    info["pricingExpression"]["tieredRates"][0]["unitPrice"] = {
        "currencyCode": "IDR", "units": "44008", "nanos": 619780000,
    }  # fmt: skip
    records = [r for r in _parse(data) if r.unit == "usd_per_gpu_hour"]
    assert {(r.currency, r.price) for r in records} == {("IDR", Decimal("44008.61978"))}
    # The A2 core and RAM are priced in USD: no machine is composed across currencies.
    assert not [r for r in _parse(data) if r.unit == "usd_per_hour"]
    # The same number read as USD is an absurd GPU-hour price.
    info["currencyConversionRate"] = 1
    info["pricingExpression"]["tieredRates"][0]["unitPrice"]["currencyCode"] = "USD"
    assert _parse(data) == []


@pytest.mark.parametrize(
    ("units", "nanos"), [("abc", 0), ("-1", 0), ("0", -5), ("0", "x"), ("0", 0), ("600", 0)]
)
def test_bad_or_absurd_prices_dropped(fixture_json, units, nanos):
    data = fixture_json(PAGE)
    a100 = next(s for s in data["skus"] if s["description"].startswith("Nvidia Tesla A100"))
    a100["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"].update(
        units=units, nanos=nanos
    )
    assert _parse(data) == []  # neither the GPU nor the machines built on it


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("skus"),
        lambda d: d["skus"][0].pop("description"),
        lambda d: d["skus"][0].pop("pricingInfo"),
        lambda d: d["skus"][0]["pricingInfo"][0]["pricingExpression"].pop("tieredRates"),
    ],
)
def test_layout_changes_fail_loudly(fixture_json, mutate):
    data = fixture_json(PAGE)
    mutate(data)
    with pytest.raises(LayoutError):
        _parse(data)


def test_fetch_without_key_is_skipped(fast_http):
    with fast_http("gcp") as http, pytest.raises(SkipSource, match="GCP_API_KEY not set"):
        gcp.fetch(http)


def test_fetch_follows_next_page_token(httpserver, monkeypatch, fast_http, fixture_json):
    page1 = fixture_json(PAGE)
    token = page1["nextPageToken"]
    page2 = {"skus": fixture_json(GPU), "nextPageToken": ""}
    httpserver.expect_request(
        "/skus",
        query_string={"key": "k", "currencyCode": "USD", "pageSize": "5000", "pageToken": token},
    ).respond_with_json(page2)
    httpserver.expect_request(
        "/skus", query_string={"key": "k", "currencyCode": "USD", "pageSize": "5000"}
    ).respond_with_json(page1)
    monkeypatch.setenv("INFERCOST_GCP_URL", httpserver.url_for("/skus"))
    monkeypatch.setenv("INFERCOST_GCP_API_KEY", "k")
    with fast_http("gcp") as http:
        captures = gcp.fetch(http)
    assert len(captures) == 2
    by = _by_key(gcp.parse(captures, NOW))
    assert by[("nvidia-tesla-a100", "us-central1", "on_demand")].price == Decimal("2.933908")
    assert by[("nvidia-l4", "europe-west1", "commitment_3y")].price == Decimal("0.2774971")
