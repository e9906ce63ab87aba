"""RunPod prices: SkyPilot's catalog CSV (no key) and the GraphQL API (RUNPOD_API_KEY set).

Expected values read by hand from tests/fixtures/prices/skypilot_runpod_vms_excerpt.csv and
runpod_graphql_gpu_types_excerpt.json.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scrapers import runpod
from scrapers.base import LayoutError
from warehouse.records import RawCapture

NOW = datetime(2026, 11, 27, tzinfo=UTC)
CSV = "skypilot_runpod_vms_excerpt.csv"
GQL = "runpod_graphql_gpu_types_excerpt.json"


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def test_catalog_to_the_cent(fixture_bytes):
    records = runpod.parse(fixture_bytes(CSV), NOW)
    by = _by_key(records)
    h100 = by[("8x_H100-SXM_SECURE", "CA-MTL-1", "on_demand")]
    assert (h100.price, h100.gpu_model, h100.gpu_count) == (Decimal("23.92"), "H100-SXM", 8.0)
    assert by[("8x_H100-SXM_SECURE", "CA-MTL-1", "spot")].price == Decimal("21.52")
    pcie = by[("1x_H100_SECURE", "US-CA-2", "on_demand")]
    assert (pcie.price, pcie.gpu_model) == (Decimal("2.39"), "H100-PCIe")
    assert ("1x_H100_SECURE", "US-CA-2", "spot") not in by  # empty SpotPrice
    a100 = by[("1x_A100-80GB_SECURE", "EU-SE-1", "on_demand")]
    assert (a100.price, a100.gpu_memory_gb, a100.vcpus, a100.ram_gb) == (
        Decimal("1.64"),
        80.0,
        8.0,
        80.0,
    )


def test_catalog_l40s_pair_exchanged_upstream_is_put_in_order(fixture_bytes):
    # The catalog writes L40S SpotPrice 0.86, Price 0.43; RunPod's API says the reverse.
    by = _by_key(runpod.parse(fixture_bytes(CSV), NOW))
    assert by[("1x_L40S_SECURE", "CA-MTL-1", "on_demand")].price == Decimal("0.86")
    assert by[("1x_L40S_SECURE", "CA-MTL-1", "spot")].price == Decimal("0.43")


def test_every_pair_of_the_whole_recorded_catalog_is_ordered(fixture_bytes):
    records = runpod.parse(fixture_bytes("skypilot_runpod_vms_0727c2bd.csv"), NOW)
    by = _by_key(records)
    pairs = [
        (by[(sku, region, "spot")].price, r.price)
        for (sku, region, term), r in by.items()
        if term == "on_demand" and (sku, region, "spot") in by
    ]
    assert len(pairs) >= 750  # 32 GPU shapes x 24 distinct zones carry both prices
    assert all(spot <= on_demand for spot, on_demand in pairs)
    l40s = [r for r in records if r.gpu_model == "L40S" and r.term == "on_demand"]
    assert {r.price / Decimal(str(r.gpu_count)) for r in l40s} == {Decimal("0.86")}


def test_catalog_duplicates_and_cpu_rows(fixture_bytes):
    records = runpod.parse(fixture_bytes(CSV), NOW)
    b200 = [r for r in records if r.sku == "2x_B200_SECURE"]
    # 5 rows in the excerpt: US-CA-1 and US-CA-2 listed twice, plus CA-MTL-1.
    assert sorted(r.region for r in b200) == ["CA-MTL-1", "US-CA-1", "US-CA-2"]
    assert all(r.price == Decimal("15.98") for r in b200)
    # NO and SE both map to zone EU-SE-1: one record.
    assert len([r for r in records if r.sku == "1x_L40S_SECURE" and r.term == "on_demand"]) == 3
    assert not any(r.sku.startswith("cpu") for r in records)


def test_conflicting_duplicates_keep_the_lowest_price(fixture_bytes):
    text = fixture_bytes(CSV).decode()
    lines = text.split("\r\n")
    i = next(i for i, line in enumerate(lines) if line.endswith(",15.98,US-CA-1"))
    lines[i] = lines[i].replace(",15.98,", ",16.50,")
    by = _by_key(runpod.parse("\r\n".join(lines).encode(), NOW))
    assert by[("2x_B200_SECURE", "US-CA-1", "on_demand")].price == Decimal("15.98")


def test_graphql_per_gpu_hour(fixture_bytes):
    by = _by_key(runpod.parse(fixture_bytes(GQL), NOW))
    h100 = by[("NVIDIA H100 80GB HBM3 (secure)", "", "on_demand")]
    assert (h100.price, h100.unit, h100.gpu_count) == (Decimal("2.99"), "usd_per_gpu_hour", 1.0)
    assert h100.gpu_model == "H100-SXM"
    assert by[("NVIDIA H100 80GB HBM3 (secure)", "", "spot")].price == Decimal("1.75")
    assert by[("NVIDIA H100 80GB HBM3 (community)", "", "on_demand")].price == Decimal("2.69")
    assert by[("NVIDIA H100 80GB HBM3 (community)", "", "spot")].price == Decimal("1.5")
    mi300x = by[("AMD Instinct MI300X OAM (secure)", "", "on_demand")]
    assert (mi300x.price, mi300x.gpu_model, mi300x.gpu_memory_gb) == (
        Decimal("2.49"),
        "MI300X",
        192.0,
    )


def test_graphql_placeholders_are_not_prices(fixture_bytes):
    by = _by_key(runpod.parse(fixture_bytes(GQL), NOW))
    # B200 communityPrice 0.5 with communityCloud false: a placeholder, not an offer.
    assert ("NVIDIA B200 (community)", "", "on_demand") not in by
    assert by[("NVIDIA B200 (secure)", "", "on_demand")].price == Decimal("6.39")
    # RTX 3070 securePrice 0 (secureCloud false); communityPrice 0.13 is real.
    assert ("NVIDIA GeForce RTX 3070 (secure)", "", "on_demand") not in by
    assert by[("NVIDIA GeForce RTX 3070 (community)", "", "on_demand")].price == Decimal("0.13")
    assert not any(sku.startswith("unknown") for sku, *_ in by)


def test_graphql_float_noise_is_rounded():
    body = json.dumps(
        {
            "data": {
                "gpuTypes": [
                    {
                        "id": "NVIDIA A40",
                        "secureCloud": True,
                        "memoryInGb": 48,
                        "securePrice": 0.48000000000000004,
                    }
                ]
            }
        }
    ).encode()
    (record,) = runpod.parse(body, NOW)
    assert record.price == Decimal("0.48")


def test_fetch_catalog_without_key(serve, fast_http, fixture_bytes):
    url = serve("runpod", "/runpod/vms.csv", fixture_bytes(CSV), content_type="text/csv")
    with fast_http("runpod") as http:
        captures = runpod.fetch(http)
    assert [c.url for c in captures] == [url]
    # A100 3 zones x 2 terms, H100 3 x 1 (no spot), H100-SXM 3 x 2, L40S 3 x 2, B200 3 x 1.
    assert len(runpod.parse(captures, NOW)) == 24


def test_fetch_graphql_with_key(httpserver, monkeypatch, fast_http, fixture_json):
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key")
    monkeypatch.setenv("INFERCOST_RUNPOD_URL", httpserver.url_for("/graphql"))
    httpserver.expect_request(
        "/graphql", method="POST", headers={"Authorization": "Bearer test-key"}
    ).respond_with_json({"data": {"gpuTypes": fixture_json(GQL)}})
    with fast_http("runpod") as http:
        captures = runpod.fetch(http)
    assert b"gpuTypes" in httpserver.log[0][0].get_data()
    by = _by_key(runpod.parse(captures, NOW))
    assert by[("NVIDIA L40S (secure)", "", "on_demand")].price == Decimal("0.86")


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"gpuTypes": null}}',
        b'{"errors": [{"message": "unauthorized"}]}',
        b'[{"displayName": "H100"}]',
        b"InstanceType,Accelerator\r\n",
        b"<html>maintenance</html>",
    ],
)
def test_layout_changes_fail_loudly(body):
    with pytest.raises(LayoutError):
        runpod.parse(body, NOW)


@pytest.mark.parametrize("bad", ["NaN", -1, "abc", -0.5, 900.0])
def test_graphql_bad_values_dropped(fixture_json, bad):
    gpus = fixture_json(GQL)
    for gpu in gpus:
        if gpu["id"] == "NVIDIA L40S":
            gpu["securePrice"] = bad
    by = _by_key(runpod.parse(json.dumps(gpus).encode(), NOW))
    assert ("NVIDIA L40S (secure)", "", "on_demand") not in by
    assert by[("NVIDIA L40S (secure)", "", "spot")].price == Decimal("0.43")


def test_tracker_saved_prices(fixture_bytes):
    # runpod_gpu_prices_excerpt.json (saved 2025-05-17): id -> {secure_price}, per GPU-hour.
    by = _by_key(runpod.parse(fixture_bytes("runpod_gpu_prices_excerpt.json"), NOW))
    a100 = by[("NVIDIA A100-SXM4-80GB (secure)", "", "on_demand")]
    assert (a100.price, a100.gpu_model) == (Decimal("1.89"), "A100-80GB")  # 1.74 by 2025-06
    assert by[("NVIDIA L40S (secure)", "", "on_demand")].price == Decimal("0.86")
    # secure_price 0 means "not offered", never free.
    assert not any("RTX 3070" in sku for sku, *_ in by)
    assert len(by) == 3


def test_catalog_and_api_in_one_run_do_not_collide(fixture_bytes):
    records = runpod.parse(fixture_bytes(CSV), NOW) + runpod.parse(fixture_bytes(GQL), NOW)
    both = runpod.parse([_capture(fixture_bytes(CSV)), _capture(fixture_bytes(GQL))], NOW)
    assert sorted(both, key=repr) == sorted(records, key=repr)
    assert len({(r.sku, r.region, r.term) for r in both}) == len(both)


def _capture(body: bytes) -> RawCapture:
    return RawCapture("runpod", "fixture", NOW, 200, body)
