"""The one HTTP client every scraper uses: polite rate, timeouts, retries that honour Retry-After.

Each response comes back as a `RawCapture` so the refresh can store it before parsing.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
import zlib
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

# One source's whole fetch (every page, retry and backoff) must end within this many seconds,
# and one response body may not inflate past this size. A source with bigger files (the AWS
# offer files) raises its own cap through HTTP_OPTIONS.
DEFAULT_DEADLINE_S = 120.0
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024


class _DeadlinePassed(Exception):
    """The source used up its total time: not retried."""


class _BodyTooLarge(Exception):
    """The (decompressed) body passed the size cap: not retried."""


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
        deadline_s: float | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if deadline_s is None:
            deadline_s = float(os.environ.get("INFERCOST_SOURCE_DEADLINE_S", DEFAULT_DEADLINE_S))
        if not deadline_s > 0:
            raise ValueError("deadline_s must be positive")
        self.source = source
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        # The clock for the whole source starts with the client: every page, retry and backoff
        # of one refresh counts against it.
        self._deadline = time.monotonic() + deadline_s
        self.max_body_bytes = max_body_bytes
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

    def _remaining_s(self, url: str) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed(
                f"{url}: the source's deadline of {self.deadline_s:g} s passed "
                "(INFERCOST_SOURCE_DEADLINE_S)"
            )
        return remaining

    def _once(self, method: str, url: str, **kwargs) -> tuple[httpx.Response, bytes]:
        self._wait_turn()
        self.requests_made += 1
        # No single wait may outlast the source's deadline, and the body is read in chunks so a
        # server dripping one byte at a time is cut off at the deadline too.
        timeout = min(self.timeout_s, self._remaining_s(url))
        request = self._client.build_request(method, url, timeout=timeout, **kwargs)
        response = self._client.send(request, stream=True)
        try:
            chunks, size = [], 0
            # iter_bytes decodes Content-Encoding piece by piece: the cap bounds what a gzip
            # bomb can inflate to before we stop reading.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _BodyTooLarge(
                        f"{url}: body larger than {self.max_body_bytes} bytes (decompressed)"
                    )
                chunks.append(chunk)
                self._remaining_s(url)
        finally:
            response.close()
        if response.status_code in RETRY_STATUSES:
            raise _RetryableStatus(response)
        return response, b"".join(chunks)

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
            response, body = retrying(self._once, method, url, **kwargs)
        except (_DeadlinePassed, _BodyTooLarge) as exc:
            raise FetchError(str(exc)) from None
        except _RetryableStatus as exc:
            raise FetchError(
                f"{url}: HTTP {exc.response.status_code} after {self.max_attempts} attempts"
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out after {self.max_attempts} attempts") from exc
        except (httpx.HTTPError, httpx.StreamError, zlib.error) as exc:
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
            body=body,
            content_type=response.headers.get("Content-Type"),
        )
