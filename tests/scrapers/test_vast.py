"""Vast.ai prices from SkyPilot's catalog CSV (excerpt of catalogs/v7/vast/vms.csv).

Expected values read by hand from tests/fixtures/prices/skypilot_vast_vms_excerpt.csv.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapers import vast

NOW = datetime(2026, 11, 27, tzinfo=UTC)
CSV = "skypilot_vast_vms_excerpt.csv"


def _by_key(records):
    return {(r.sku, r.region, r.term): r for r in records}


def test_parse_to_the_cent(fixture_bytes):
    records = vast.parse(fixture_bytes(CSV), NOW)
    by = _by_key(records)
    h100 = by[("1x-H100_SXM-32-65536", "Czechia, CZ, EU", "on_demand")]
    assert (h100.price, h100.gpu_model, h100.gpu_name_source) == (
        Decimal("1.80"),
        "H100-SXM",
        "H100",
    )
    nvl = by[("2x-H100_NVL-32-65536", "California, US, NA", "on_demand")]
    assert (nvl.price, nvl.gpu_model, nvl.gpu_count) == (Decimal("4.53"), "H100-NVL", 2.0)
    h200 = by[("8x-H200-32-65536", ", US, NA", "on_demand")]  # the state is empty
    assert (h200.price, h200.gpu_memory_gb) == (Decimal("22.59"), 141.0)
    # SkyPilot's AcceleratorName says RTX4080; the instance type says 4080 SUPER.
    sup = by[("1x-RTX_4080S-32-65536", "Norway, NO, EU", "on_demand")]
    assert (sup.price, sup.gpu_model, sup.gpu_name_source) == (
        Decimal("0.24"),
        "RTX-4080-SUPER",
        "RTX4080",
    )
    # 40960 MiB per GPU: the 40 GB A100.
    assert by[("1x-A100_SXM4-32-65536", "Germany, DE, EU", "on_demand")].gpu_model == "A100-40GB"
    assert len(records) == 10


def test_zero_spot_price_means_no_spot_market(fixture_bytes):
    assert not any(r.term == "spot" for r in vast.parse(fixture_bytes(CSV), NOW))


def test_inconsistent_gpu_memory_uses_the_models_size(fixture_bytes):
    # 2x-RTX_4090 lists 49128 MiB total in Texas but 98280 MiB in Hong Kong.
    by = _by_key(vast.parse(fixture_bytes(CSV), NOW))
    assert by[("2x-RTX_4090-32-65536", "Hong Kong, HK, AS", "on_demand")].gpu_memory_gb == 24.0
    assert by[("2x-RTX_4090-32-65536", "Texas, US, NA", "on_demand")].gpu_memory_gb == 24.0


def test_real_spot_price_is_kept(fixture_bytes):
    body = fixture_bytes(CSV).replace(b',1.80,0.00,"Czechia', b',1.80,0.95,"Czechia')
    by = _by_key(vast.parse(body, NOW))
    assert by[("1x-H100_SXM-32-65536", "Czechia, CZ, EU", "spot")].price == Decimal("0.95")


def test_fetch_over_http(serve, fast_http, fixture_bytes):
    url = serve("vast", "/vast/vms.csv", fixture_bytes(CSV), content_type="text/csv")
    with fast_http("vast") as http:
        captures = vast.fetch(http)
    assert [c.url for c in captures] == [url]
    assert len(vast.parse(captures, NOW)) == 10


_HEADER = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region"
)
_price_text = st.one_of(
    st.decimals(min_value=-10, max_value=10_000, places=2, allow_nan=True).map(str),
    st.sampled_from(["", "abc", "-1", "NaN", "inf", "0.00", "1e400"]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(_price_text, _price_text, st.sampled_from(["Texas, US, NA", "Norway, NO, EU"])),
        max_size=8,
    )
)
def test_any_price_text_gives_valid_unique_records(rows):
    lines = [_HEADER] + [
        f'2x-H200-32-65536,H200,2,32,64.0,"{{}}",{price},{spot},"{region}"'
        for price, spot, region in rows
    ]
    records = vast.parse("\r\n".join(lines).encode(), NOW)
    keys = [(r.sku, r.region, r.term) for r in records]
    assert len(keys) == len(set(keys))
    # Positive, finite, and at most $500 per GPU-hour for this 2-GPU shape.
    assert all(Decimal(0) < r.price <= Decimal(1000) for r in records)
