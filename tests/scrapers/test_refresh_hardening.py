"""Hostile price responses (issue 15): no price vanishes, nothing absurd is stored, no hang."""

from __future__ import annotations

import gzip
import json
import logging
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner
from werkzeug import Response

from scrapers.http import Http
from scrapers.refresh import refresh
from sim.cli import cli
from warehouse import Warehouse

L114 = "litellm_model_prices_1.14.4.json"
LAMBDA = "skypilot_lambda_vms_v7_excerpt.csv"
GPT4_INPUT = ("gpt-4", "usd_per_mtok_input", 0, "on_demand")


def _map_with(fixture_json, **gpt4):
    data = fixture_json(L114)
    data["gpt-4"] = {**data["gpt-4"], **gpt4}
    return json.dumps(data)


@pytest.mark.parametrize("bad", ["N/A", -1, "-1", 1e9, True, float("nan"), "1e-30"])
def test_one_bad_cell_keeps_gpt4_priced(
    wh, serve, fast_http, fixture_bytes, fixture_json, prices_of, bad
):
    serve("litellm", "/m.json", fixture_bytes(L114))
    assert refresh(wh, ["litellm"], http_factory=fast_http)[0].status == "ok"
    serve("litellm", "/m.json", _map_with(fixture_json, input_cost_per_token=bad))
    (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
    assert result.status == "ok", result.error
    assert prices_of(wh, "litellm")[GPT4_INPUT] == Decimal("30")


def test_a_cut_row_keeps_the_price_open(wh, serve, fast_http, fixture_bytes, prices_of):
    serve("lambda", "/vms.csv", fixture_bytes(LAMBDA), content_type="text/csv")
    assert refresh(wh, ["lambda"], http_factory=fast_http)[0].status == "ok"
    before = prices_of(wh, "lambda")
    lines = fixture_bytes(LAMBDA).decode().splitlines()
    gpu_row = next(i for i, line in enumerate(lines) if line.startswith("gpu_1x"))
    lines[gpu_row] = lines[gpu_row].replace(",", ",N/A,", 1).rsplit(",", 4)[0]  # a cut row
    serve("lambda", "/vms.csv", "\n".join(lines), content_type="text/csv")
    assert refresh(wh, ["lambda"], http_factory=fast_http)[0].status == "ok"
    assert prices_of(wh, "lambda") == before


def test_first_live_run_is_guarded_by_the_snapshot(tmp_path, serve, fast_http):
    # A fresh warehouse holds the shipped snapshot: a 1-model map must not close the rest.
    with Warehouse(tmp_path / "fresh.duckdb") as wh:
        before = wh.query("SELECT count(*) FROM prices WHERE source = 'litellm'").item()
        one = {"gpt-4": {"input_cost_per_token": 3e-05, "output_cost_per_token": 6e-05,
                         "litellm_provider": "openai"}}  # fmt: skip
        serve("litellm", "/one.json", json.dumps(one))
        (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
        assert result.status == "rejected" and "snapshot" in result.error
        assert wh.query("SELECT count(*) FROM prices WHERE source = 'litellm'").item() == before


@pytest.mark.parametrize("count", ["inf", "1e400", "nan", "-8"])
def test_non_finite_gpu_counts_are_never_stored(wh, serve, fast_http, fixture_bytes, count):
    text = (
        fixture_bytes(LAMBDA)
        .decode()
        .replace("gpu_8x_h100_sxm5,H100,8.0", f"gpu_8x_h100_sxm5,H100,{count}")
    )
    serve("lambda", "/vms.csv", text, content_type="text/csv")
    refresh(wh, ["lambda"], http_factory=fast_http)
    bad = wh.query(
        "SELECT count(*) FROM price_periods WHERE NOT isfinite(gpu_count) OR gpu_count <= 0"
    ).item()
    assert bad == 0


def test_tiny_per_token_price_is_not_stored_as_zero(wh, serve, fast_http, fixture_json, prices_of):
    serve("litellm", "/m.json", _map_with(fixture_json, input_cost_per_token=1e-30))
    assert refresh(wh, ["litellm"], http_factory=fast_http)[0].status == "ok"
    assert GPT4_INPUT not in prices_of(wh, "litellm")


def test_huge_per_token_price_is_a_dropped_cell_not_a_traceback(
    wh, serve, fast_http, fixture_json, prices_of
):
    serve("litellm", "/m.json", _map_with(fixture_json, input_cost_per_token=1e300))
    (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
    assert result.status == "ok" and GPT4_INPUT not in prices_of(wh, "litellm")


def test_duplicate_json_keys_keep_the_highest_price(wh, serve, fast_http, fixture_bytes, prices_of):
    text = fixture_bytes(L114).decode()
    dup = '{\n    "gpt-4": {"input_cost_per_token": 0.00006, "output_cost_per_token": 0.00006, "litellm_provider": "openai"},'
    low = '\n    "gpt-4": {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00006, "litellm_provider": "openai"},'
    body = dup + low + text.lstrip()[1:]
    serve("litellm", "/m.json", body)
    assert refresh(wh, ["litellm"], http_factory=fast_http)[0].status == "ok"
    assert prices_of(wh, "litellm")[GPT4_INPUT] == Decimal("60")


def test_a_dripping_server_is_cut_off_at_the_source_deadline(wh, httpserver, monkeypatch):
    def drip(request):
        def body():
            yield b"{"
            for _ in range(30):
                time.sleep(0.1)
                yield b" "

        return Response(body(), content_type="application/json")

    httpserver.expect_request("/slow.json").respond_with_handler(drip)
    monkeypatch.setenv("INFERCOST_LITELLM_URL", httpserver.url_for("/slow.json"))

    def factory(name, **options):
        return Http(name, rate_per_s=1000.0, max_attempts=1, sleep=lambda s: None, deadline_s=0.5)

    started = time.monotonic()
    (result,) = refresh(wh, ["litellm"], http_factory=factory)
    assert time.monotonic() - started < 2.5
    assert result.status == "failed" and "deadline" in result.error


def test_azure_next_page_link_loop_is_detected(wh, serve, fast_http, fixture_json):
    page = {"Items": [], "NextPageLink": None}
    url = serve("azure", "/azure", "{}")
    page["NextPageLink"] = url
    serve("azure", "/azure", json.dumps(page))
    (result,) = refresh(wh, ["azure"], http_factory=fast_http)
    assert result.status == "failed" and "repeats" in result.error


def test_gcp_page_token_loop_is_detected(wh, serve, fast_http, monkeypatch):
    monkeypatch.setenv("INFERCOST_GCP_API_KEY", "k")
    serve("gcp", "/skus", json.dumps({"skus": [], "nextPageToken": "same"}))
    (result,) = refresh(wh, ["gcp"], http_factory=fast_http)
    assert result.status == "failed" and "repeats" in result.error


def test_a_gzip_bomb_is_a_failed_run(wh, httpserver, monkeypatch):
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024))
    httpserver.expect_request("/bomb.json").respond_with_response(
        Response(bomb, headers={"Content-Encoding": "gzip"}, content_type="application/json")
    )
    monkeypatch.setenv("INFERCOST_LITELLM_URL", httpserver.url_for("/bomb.json"))

    def factory(name, **options):
        return Http(name, rate_per_s=1000.0, max_attempts=1, sleep=lambda s: None,
                    max_body_bytes=8 * 1024 * 1024)  # fmt: skip

    (result,) = refresh(wh, ["litellm"], http_factory=factory)
    assert result.status == "failed" and "larger than" in result.error


@pytest.mark.parametrize(
    "source, path, body",
    [
        ("openrouter", "/models", {"data": [{"id": "m", "pricing": {"prompt": "1e-6", "completion": "1e-6"}, "overrides": [1, 2]}]}),
        ("openrouter", "/models", {"data": [[1, 2]]}),
        ("llm_prices", "/current-v1.json", {"prices": [["x"]]}),
        ("azure", "/azure", {"Items": [{"armSkuName": ["ND"], "armRegionName": "x", "skuName": "s", "productName": "p", "retailPrice": 1, "unitOfMeasure": "1 Hour", "type": "Consumption", "currencyCode": "USD", "effectiveStartDate": "9999-12-31T00:00:00"}]}),
        ("litellm", "/m.json", [1, 2, 3]),
    ],
)  # fmt: skip
def test_wrong_shapes_fail_with_one_log_line(wh, serve, fast_http, caplog, source, path, body):
    serve(source, path, json.dumps(body))
    with caplog.at_level(logging.INFO, logger="scrapers"):
        (result,) = refresh(wh, [source], http_factory=fast_http)
    assert result.status in ("failed", "ok", "rejected")
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) <= 1 and all(r.exc_info is None for r in failures)


def test_prices_check_exits_1_after_spot_above_on_demand_is_ingested(
    tmp_path, serve, fast_http, fixture_bytes
):
    text = fixture_bytes(LAMBDA).decode()
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("gpu_8x_h100_sxm5"))
    # Give one row a spot price twice its on-demand price (SpotPrice is the last column).
    price = lines[i].split(",")[5]
    lines[i] = lines[i] + str(Decimal(price) * 2) if lines[i].endswith(",") else lines[i]
    serve("lambda", "/vms.csv", "\r\n".join(lines) + "\r\n", content_type="text/csv")
    db = tmp_path / "w.duckdb"
    with Warehouse(db, load_snapshot=False) as wh:
        assert refresh(wh, ["lambda"], http_factory=fast_http)[0].status == "ok"
        spot = wh.gpu_offers(sku="gpu_8x_h100_sxm5", term="spot")
        assert spot.height == 1 and spot["quarantined"].to_list() == [True]
        assert wh.gpu_offers(sku="gpu_8x_h100_sxm5", term="spot", usable=True).is_empty()
        stored = wh.query("SELECT rule, level, run_id FROM price_checks WHERE current").rows()
        assert ("spot_above_on_demand", "error", 1) in stored
    result = CliRunner().invoke(cli, ["--db", str(db), "prices", "check"])
    assert result.exit_code == 1, result.output
    assert "spot_above_on_demand" in result.output
    as_json = CliRunner().invoke(cli, ["--db", str(db), "prices", "check", "--format", "json"])
    assert as_json.exit_code == 1
    assert {f["rule"] for f in json.loads(as_json.output)} >= {"spot_above_on_demand"}
