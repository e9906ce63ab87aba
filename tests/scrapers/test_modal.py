"""Modal's pricing page (HTML excerpt of the saved page): per-second GPU prices, by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from scrapers import modal
from scrapers.refresh import refresh

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FILE = "modal_pricing_excerpt.html"


def test_over_http_to_the_cent(wh, serve, fast_http, fixture_bytes, prices_of):
    serve("modal", "/pricing", fixture_bytes(FILE), content_type="text/html; charset=utf-8")
    (result,) = refresh(wh, ["modal"], http_factory=fast_http)
    assert result.status == "ok", result.error
    p = prices_of(wh, "modal")
    # "Nvidia H100 $0.001097 / sec" -> 0.001097 * 3600 = 3.9492 USD per GPU-hour.
    assert p[("Nvidia H100", "usd_per_second", 0, "on_demand")] == Decimal("0.001097")
    assert p[("Nvidia H100", "usd_per_gpu_hour", 0, "on_demand")] == Decimal("3.9492")
    # "Nvidia T4 $0.000164 / sec" -> 0.5904 per hour; B200 $0.001736 -> 6.2496.
    assert p[("Nvidia T4", "usd_per_gpu_hour", 0, "on_demand")] == Decimal("0.5904")
    assert p[("Nvidia B200", "usd_per_gpu_hour", 0, "on_demand")] == Decimal("6.2496")
    assert len({sku for sku, *_ in p}) == 9  # 9 GPUs; CPU and memory rows are not GPUs
    gpu = wh.query(
        "SELECT gpu_model, gpu_name_source, gpu_count FROM prices "
        "WHERE source = 'modal' AND sku = 'Nvidia A100, 80 GB' LIMIT 1"
    ).row(0)
    assert gpu == ("A100-80GB", "Nvidia A100, 80 GB", 1.0)


def test_layout_change_fails_and_stores_nothing(wh, serve, fast_http, fixture_bytes, prices_of):
    html = fixture_bytes(FILE).replace(b'class="line-item', b'class="price-row')
    serve("modal", "/pricing", html, content_type="text/html")
    (result,) = refresh(wh, ["modal"], http_factory=fast_http)
    assert result.status == "failed" and "layout changed" in result.error
    assert prices_of(wh, "modal") == {}


def test_other_units_and_junk_are_dropped(fixture_bytes):
    html = (
        fixture_bytes(FILE)
        .replace(b"$0.001097 <span", b"$0.001097/hr <span")  # H100: not a number any more
        .replace(b'$0.001736 <span class="text-light-green/60">/ sec', b"$0.001736 <span>/ hr")
        .replace(b"$0.000164", b"$1.64")  # T4: 5904 USD/h, a unit mix-up
    )
    skus = {r.sku for r in modal.parse(html, NOW)}
    assert skus == {
        "Nvidia H200",
        "Nvidia A100, 80 GB",
        "Nvidia A100, 40 GB",
        "Nvidia L40S",
        "Nvidia A10G",
        "Nvidia L4",
    }
