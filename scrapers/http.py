"""The one HTTP client every scraper uses: polite rate, timeouts, retries that honour Retry-After.

Each response comes back as a `RawCapture` so the refresh can store it before parsing.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import tenacity

from scrapers.base import FetchError
from warehouse.records import RawCapture

try:
    from importlib.metadata import version as _pkg_version

    VERSION = _pkg_version("infercost")
except Exception:  # running from a checkout that was never installed
    VERSION = "0.0.0"

USER_AGENT = f"infercost/{VERSION} (+https://github.com/infercost/infercost)"

# Statuses worth retrying: rate limiting and server-side trouble. Other 4xx are our fault or
# the resource is gone, and retrying them only hammers the server.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class Http:
    """An httpx client for one source: min spacing between requests, retries, `FetchError` at the end.

    `sleep` is injectable so tests do not wait for real backoff.
    """

    def __init__(
        self,
        source: str,
        *,
        rate_per_s: float = 2.0,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
        backoff_max_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base_s: float = 0.5,
    ):
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.source = source
        self.min_interval_s = 1.0 / rate_per_s
        self.max_attempts = max_attempts
        self.backoff_max_s = backoff_max_s
        self.backoff_base_s = backoff_base_s
        self._sleep = sleep
        self._last_request = float("-inf")
        self._lock = threading.Lock()
        self.requests_made = 0
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=True,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate, br"},
        )

    # -- public -------------------------------------------------------------------------------

    def get(
        self, url: str, *, params: dict | None = None, headers: dict | None = None
    ) -> RawCapture:
        return self._request("GET", url, params=params, headers=headers)

    def post_json(self, url: str, payload: dict, *, headers: dict | None = None) -> RawCapture:
        return self._request("POST", url, json=payload, headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _wait_turn(self) -> None:
        with self._lock:
            gap = self.min_interval_s - (time.monotonic() - self._last_request)
            if gap > 0:
                self._sleep(gap)
            self._last_request = time.monotonic()

    def _wait_s(self, state: tenacity.RetryCallState) -> float:
        backoff = tenacity.wait_random_exponential(
            multiplier=self.backoff_base_s, max=self.backoff_max_s
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            hinted = retry_after_s(exc.response.headers.get("Retry-After"))
            if hinted is not None:
                # The server knows best, but a hostile or broken header must not stall a refresh.
                return min(max(hinted, backoff), self.backoff_max_s)
        return backoff

    def _once(self, method: str, url: str, **kwargs) -> httpx.Response:
        self._wait_turn()
        self.requests_made += 1
        response = self._client.request(method, url, **kwargs)
        if response.status_code in RETRY_STATUSES:
            response.read()
            raise _RetryableStatus(response)
        return response

    def _request(self, method: str, url: str, **kwargs) -> RawCapture:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(
                (_RetryableStatus, httpx.TransportError, httpx.TimeoutException)
            ),
            wait=self._wait_s,
            stop=tenacity.stop_after_attempt(self.max_attempts),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(self._once, method, url, **kwargs)
        except _RetryableStatus as exc:
            raise FetchError(
                f"{url}: HTTP {exc.response.status_code} after {self.max_attempts} attempts"
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out after {self.max_attempts} attempts") from exc
        except httpx.HTTPError as exc:
            raise FetchError(
                f"{url}: {type(exc).__name__}: {exc} after {self.max_attempts} attempts"
            ) from exc
        if response.status_code >= 400:
            raise FetchError(f"{url}: HTTP {response.status_code}")
        return RawCapture(
            source=self.source,
            url=str(response.url),
            fetched_at=datetime.now(UTC),
            http_status=response.status_code,
            body=response.content,
            content_type=response.headers.get("Content-Type"),
        )
