"""The shared HTTP layer against a real local server: retries, Retry-After, rate, errors, gzip."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import brotli
import httpx
import pytest
from werkzeug import Response

from scrapers.base import FetchError
from scrapers.http import USER_AGENT, Http, retry_after_s


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_http(sleeps: Sleeps | None = None, **kw) -> Http:
    kw.setdefault("rate_per_s", 1000.0)
    kw.setdefault("max_attempts", 3)
    kw.setdefault("backoff_max_s", 30.0)
    return Http("test", sleep=sleeps if sleeps is not None else Sleeps(), **kw)


def test_get_returns_raw_capture_with_user_agent(httpserver):
    httpserver.expect_request("/p", headers={"User-Agent": USER_AGENT}).respond_with_json({"ok": 1})
    with make_http() as http:
        cap = http.get(httpserver.url_for("/p"))
    assert cap.source == "test"
    assert cap.http_status == 200
    assert json.loads(cap.body) == {"ok": 1}
    assert cap.content_type == "application/json"
    assert cap.fetched_at.tzinfo is not None
    assert USER_AGENT.startswith("infercost/") and "+https://" in USER_AGENT


def test_retries_503_then_succeeds_honouring_retry_after(httpserver):
    httpserver.expect_ordered_request("/r").respond_with_data(
        "busy", status=503, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request("/r").respond_with_data("fine")
    sleeps = Sleeps()
    with make_http(sleeps) as http:
        cap = http.get(httpserver.url_for("/r"))
    assert cap.body == b"fine"
    assert http.requests_made == 2
    # The backoff wait is at least the server's 7 s hint (rate spacing sleeps are microseconds).
    assert max(sleeps) >= 7.0


def test_retry_after_is_capped(httpserver):
    httpserver.expect_ordered_request("/c").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "86400"}
    )
    httpserver.expect_ordered_request("/c").respond_with_data("ok")
    sleeps = Sleeps()
    with make_http(sleeps, backoff_max_s=2.0) as http:
        http.get(httpserver.url_for("/c"))
    assert max(sleeps) == 2.0


def test_gives_up_with_url_and_status(httpserver):
    httpserver.expect_request("/down").respond_with_data("no", status=502)
    sleeps = Sleeps()
    with make_http(sleeps, max_attempts=3) as http, pytest.raises(FetchError) as err:
        http.get(httpserver.url_for("/down"))
    assert "HTTP 502" in str(err.value) and "/down" in str(err.value)
    assert http.requests_made == 3
    # Exponential backoff with jitter: waits stay within [0, backoff_max_s].
    assert all(0 <= s <= 30.0 for s in sleeps)


def test_client_error_is_not_retried(httpserver):
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    with make_http() as http, pytest.raises(FetchError, match="HTTP 404"):
        http.get(httpserver.url_for("/gone"))
    assert http.requests_made == 1


def test_gzip_body_is_decoded(httpserver):
    raw = json.dumps({"a": "x" * 1000}).encode()
    httpserver.expect_request("/gz").respond_with_response(
        Response(gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    )
    with make_http() as http:
        cap = http.get(httpserver.url_for("/gz"))
    assert cap.body == raw


def test_brotli_body_is_decoded_and_asked_for(httpserver):
    raw = json.dumps({"a": "y" * 1000}).encode()
    httpserver.expect_request(
        "/br", headers={"Accept-Encoding": "gzip, deflate, br"}
    ).respond_with_response(Response(brotli.compress(raw), headers={"Content-Encoding": "br"}))
    with make_http() as http:
        cap = http.get(httpserver.url_for("/br"))
    assert cap.body == raw


def test_min_spacing_between_requests(httpserver):
    httpserver.expect_request("/s").respond_with_data("ok")
    sleeps = Sleeps()
    with make_http(sleeps, rate_per_s=0.5) as http:  # one request per 2 s
        http.get(httpserver.url_for("/s"))
        http.get(httpserver.url_for("/s"))
    # First request goes at once; the second waits for nearly the whole 2 s interval.
    assert len(sleeps) == 1 and 1.5 < sleeps[0] <= 2.0


def test_timeout_is_retried_then_fetch_error():
    calls = []

    def handler(request):
        calls.append(request.url)
        raise httpx.ReadTimeout("timed out", request=request)

    with make_http(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(FetchError, match="timed out after 3 attempts"):
            http.get("http://127.0.0.1:9/never")
    assert len(calls) == 3


def test_connect_error_is_fetch_error():
    # Port 9 (discard) on localhost is closed in test environments: connection refused.
    with make_http(max_attempts=2) as http, pytest.raises(FetchError, match="ConnectError"):
        http.get("http://127.0.0.1:9/x")
    assert http.requests_made == 2


def test_post_json(httpserver):
    httpserver.expect_request("/gql", method="POST", json={"query": "{ a }"}).respond_with_json(
        {"data": {"a": 1}}
    )
    with make_http() as http:
        cap = http.post_json(httpserver.url_for("/gql"), {"query": "{ a }"})
    assert json.loads(cap.body) == {"data": {"a": 1}}


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s("120") == 120.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None
