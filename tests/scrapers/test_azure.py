"""Azure Retail Prices: Linux pay-as-you-go, spot, low priority, savings plans, reservations.

Expected values read by hand from tests/fixtures/prices/azure_gpu_retail_prices_projection_excerpt.json
(real projected API rows, 2025-06) and azure_retail_eastus_standard_d2s_v3_nofilter_preview.json
(a raw API page, Apache-2.0). The raw page prices a CPU VM, so tests that need GPU rows rename
its VM to Standard_NC24ads_A100_v4 in a copy and keep every other field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import azure
from scrapers.base import LayoutError

NOW = datetime(2025, 6, 21, tzinfo=UTC)
PROJ = "azure_gpu_retail_prices_projection_excerpt.json"
RAW = "azure_retail_eastus_standard_d2s_v3_nofilter_preview.json"
VM = "Standard_NC24ads_A100_v4"


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def _gpu_page(fixture_json) -> dict:
    page = fixture_json(RAW)
    for item in page["Items"]:
        item["armSkuName"] = VM
        item["skuName"] = item["skuName"].replace("D2s v3", "NC24ads A100 v4")
    return page


def _parse(data):
    return azure.parse(json.dumps(data).encode(), NOW)


def test_projection_to_the_cent(fixture_bytes):
    by = _by_key(azure.parse(fixture_bytes(PROJ), NOW))
    h100 = by[("ND96isrH100v5", "eastus", "on_demand")]
    assert (h100.price, h100.gpu_model, h100.gpu_count) == (Decimal("98.32"), "H100-SXM", 8)
    assert h100.gpu_memory_gb == 80.0
    assert by[("ND96isrH100v5", "eastus", "low_priority")].price == Decimal("19.664")
    assert by[("ND96isrH100v5", "eastus", "spot")].price == Decimal("40.271872")
    assert by[("ND96isrH100v5", "westeurope", "on_demand")].price == Decimal("127.816")
    a100 = by[(VM, "eastus", "on_demand")]
    assert (a100.price, a100.gpu_model, a100.gpu_count) == (Decimal("3.673"), "A100-80GB", 1)
    assert by[(VM, "eastus", "spot")].price == Decimal("1.041296")
    assert by[(VM, "westeurope", "low_priority")].price == Decimal("0.955")
    assert by[("ND96asr_A100_v4", "westeurope", "on_demand")].price == Decimal("35.357")
    assert by[("ND96asr_A100_v4", "westeurope", "on_demand")].gpu_model == "A100-40GB"
    assert by[("NC40adsH100v5", "westeurope", "on_demand")].price == Decimal("9.08")


def test_projection_reservation_totals_and_windows_never_hourly(fixture_bytes):
    records = azure.parse(fixture_bytes(PROJ), NOW)
    prices = {r.price for r in records}
    # ND96isrH100v5 eastus 1/3/5-year totals and the Windows meter (102.736).
    for total in ("551221.0", "1134310.0", "1722566.0", "21033.0", "102.736"):
        assert Decimal(total) not in prices
    assert max(prices) == Decimal("127.816")
    assert not any("Type1" in r.sku for r in records)  # dedicated hosts
    assert all(r.term in {"on_demand", "spot", "low_priority"} for r in records)


def test_raw_cpu_vm_page_yields_nothing(fixture_bytes):
    assert azure.parse(fixture_bytes(RAW), NOW) == []


def test_raw_page_terms(fixture_json):
    by = {k[2]: r.price for k, r in _by_key(_parse(_gpu_page(fixture_json))).items()}
    # Linux Consumption rows only; Windows (0.188, 0.075) and DevTestConsumption are not here.
    assert by == {
        "on_demand": Decimal("0.096"),
        "savings_plan_1y": Decimal("0.06624"),
        "savings_plan_3y": Decimal("0.04512"),
        "low_priority": Decimal("0.019"),
        "spot": Decimal("0.018816"),
    }


def test_raw_reservations_become_hourly_when_the_term_is_known(fixture_json):
    page = _gpu_page(fixture_json)
    base = next(i for i in page["Items"] if i["skuName"] == "NC24ads A100 v4" and i["type"] == "Consumption"
                and not i["productName"].endswith("Windows"))  # fmt: skip
    # Totals from the projection file's eastus rows for this VM (1 and 3 years); 5 years is dropped.
    for term, total in (("1 Year", 21033.0), ("3 Years", 35821.0), ("5 Years", 50000.0)):
        page["Items"].append(
            {**base, "type": "Reservation", "reservationTerm": term, "retailPrice": total,
             "unitPrice": total, "savingsPlan": None}
        )  # fmt: skip
    by = {k[2]: r.price for k, r in _by_key(_parse(page)).items()}
    assert by["reserved_1y"] == Decimal("2.401027")  # 21033 / 8760 h
    assert by["reserved_3y"] == Decimal("1.363052")  # 35821 / 26280 h
    assert by["on_demand"] == Decimal("0.096")
    assert "reserved_5y" not in by


def test_closed_rows_are_not_current(fixture_json):
    page = _gpu_page(fixture_json)
    for item in page["Items"]:
        if item["skuName"] == "NC24ads A100 v4 Spot":
            item["effectiveEndDate"] = "2024-01-01T00:00:00Z"  # before the fetch
    assert "spot" not in {r.term for r in _parse(page)}


def test_non_usd_currency_is_kept(fixture_json):
    page = _gpu_page(fixture_json)
    for item in page["Items"]:
        item["currencyCode"] = "EUR"
    assert {r.currency for r in _parse(page)} == {"EUR"}


@pytest.mark.parametrize("bad", ["abc", -1, float("nan"), None, 0, 5000.0])
def test_bad_and_absurd_prices_dropped(fixture_json, bad):
    rows = fixture_json(PROJ)
    for row in rows:
        if row["skuName"] == VM and row["region"] == "eastus" and row["pricePerHour"] == 3.673:
            row["pricePerHour"] = bad
    by = _by_key(azure.parse(json.dumps(rows).encode(), NOW))
    assert (VM, "eastus", "on_demand") not in by
    assert by[(VM, "westeurope", "on_demand")].price == Decimal("4.775")


@pytest.mark.parametrize(
    "body",
    [
        b'{"BillingCurrency": "USD", "Count": 0}',
        b'{"Items": [{"armSkuName": "Standard_NC24ads_A100_v4"}]}',
        b'[{"region": "eastus", "skuName": "NC40adsH100v5"}]',
        b"<html>Service Unavailable</html>",
    ],
)
def test_layout_changes_fail_loudly(body):
    with pytest.raises(LayoutError):
        azure.parse(body, NOW)


def test_fetch_follows_next_page_link(httpserver, monkeypatch, fast_http, fixture_json):
    page1 = _gpu_page(fixture_json)
    page2 = _gpu_page(fixture_json)
    for item in page2["Items"]:
        item["armRegionName"] = "westus2"
    page1["NextPageLink"] = httpserver.url_for("/prices") + "?$skip=100"
    httpserver.expect_request("/prices", query_string="$skip=100").respond_with_json(page2)
    httpserver.expect_request("/prices").respond_with_json(page1)
    monkeypatch.setenv("INFERCOST_AZURE_URL", httpserver.url_for("/prices"))
    with fast_http("azure") as http:
        captures = azure.fetch(http)
    assert len(captures) == 2
    regions = {r.region for r in azure.parse(captures, NOW)}
    assert regions == {"eastus", "westus2"}
