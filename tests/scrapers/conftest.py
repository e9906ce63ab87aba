"""Shared fixtures for scraper tests: recorded files served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug import Response

from scrapers.http import Http
from warehouse import Warehouse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"


# Helpers are handed out as fixtures: with `tests/scrapers` and `scrapers` both on sys.path a
# test cannot import this conftest by module name.


def _fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _fast_http(name: str, **options) -> Http:
    """The real client with no waiting: tests must not sleep through backoff or rate limits."""
    options.update(rate_per_s=1000.0, max_attempts=2, sleep=lambda s: None)
    return Http(name, **options)


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    return _fixture_bytes


@pytest.fixture
def fixture_json() -> Callable[[str], object]:
    return lambda name: json.loads(_fixture_bytes(name))


@pytest.fixture
def fast_http() -> Callable[..., Http]:
    return _fast_http


@pytest.fixture
def wh():
    with Warehouse(":memory:", load_snapshot=False) as warehouse:
        yield warehouse


@pytest.fixture
def serve(httpserver, monkeypatch) -> Callable[..., str]:
    """serve(source, path, body, content_type=..., status=200, first_url=True) -> URL.

    Serves `body` at `path` on the local server; with first_url the source's
    INFERCOST_<NAME>_URL points there. Serving the same path again replaces the response.
    """
    routes: dict[str, tuple[bytes, int, str]] = {}

    def _serve(
        source: str | None,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/json",
        status: int = 200,
        first_url: bool = True,
    ) -> str:
        if isinstance(body, str):
            body = body.encode()
        if path not in routes:
            httpserver.expect_request(path).respond_with_handler(
                lambda request, path=path: Response(
                    routes[path][0], status=routes[path][1], content_type=routes[path][2]
                )
            )
        routes[path] = (body, status, content_type)
        url = httpserver.url_for(path)
        if source and first_url:
            monkeypatch.setenv(f"INFERCOST_{source.upper()}_URL", url)
        return url

    return _serve


def _prices_of(wh, source: str):
    """Current prices of `source` as {(sku, unit, tier_min_tokens, term): Decimal}."""
    df = wh.query(
        "SELECT sku, unit, tier_min_tokens, term, price FROM prices WHERE source = ?", [source]
    )
    return {(r[0], r[1], r[2], r[3]): r[4] for r in df.iter_rows()}


@pytest.fixture
def prices_of():
    return _prices_of
