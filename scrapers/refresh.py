"""One price refresh: fetch, parse and ingest each source on its own, so one failure never stops the rest.

Also re-parses the raw responses of an earlier run with today's parsers (`reparse`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from scrapers.base import LayoutError, ScrapeError, SkipSource, counting_bad_rows
from scrapers.http import Http
from scrapers.registry import SOURCES, get_source
from warehouse.records import RawCapture

log = logging.getLogger(__name__)

# A source whose module sets HTTP_OPTIONS = {"rate_per_s": 0.5, ...} gets those Http arguments.
Progress = Callable[[str, str, object], None]  # (source, "start" | "done", RunResult | None)


class _Recorder:
    """Wraps the source's Http so every response is kept, even when fetch fails halfway."""

    def __init__(self, http):
        self._http = http
        self.captures: list[RawCapture] = []

    def get(self, *args, **kwargs) -> RawCapture:
        cap = self._http.get(*args, **kwargs)
        self.captures.append(cap)
        return cap

    def post_json(self, *args, **kwargs) -> RawCapture:
        cap = self._http.post_json(*args, **kwargs)
        self.captures.append(cap)
        return cap

    def __getattr__(self, name):
        return getattr(self._http, name)


def check_sources(names: list[str] | None) -> list[str]:
    """The sources to run, in registry order; ValueError names any unknown one."""
    if not names:
        return list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(
            f"unknown source {', '.join(unknown)}; known: {', '.join(sorted(SOURCES))}"
        )
    return [n for n in SOURCES if n in set(names)]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ScrapeError):
        return text or type(exc).__name__
    # Not a scraper's own error: most likely a parser bug. Name the type so it can be found.
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_captures(module, name: str, captures, fetched_at: datetime):
    """`module.parse` with its bad-row tally; any error that is not the project's own becomes a
    LayoutError (the response has a shape the parser did not expect), so a failure is one line.

    Returns (records, complete)."""
    try:
        with counting_bad_rows() as bad:
            records = module.parse(captures, fetched_at)
    except ScrapeError:
        raise
    except Exception as exc:  # TypeError on a list where an object belongs, OverflowError, ...
        raise LayoutError(f"{name}: unexpected response shape: {_one_line(exc)[:200]}") from None
    if bad.count:
        log.info("%s: %d rows unreadable: periods of unseen prices stay open", name, bad.count)
    return records, bad.count == 0


def run_source(wh, name: str, *, http_factory=Http, observed_at: datetime | None = None):
    """Fetch, parse and ingest one source; every failure becomes a recorded failed run."""
    started_at = datetime.now(UTC)
    recorder: _Recorder | None = None
    try:
        module = get_source(name)
        http = http_factory(name, **getattr(module, "HTTP_OPTIONS", {}))
        recorder = _Recorder(http)
        try:
            module.fetch(recorder)
        finally:
            http.close()
        records, complete = parse_captures(module, name, recorder.captures, started_at)
    except SkipSource as exc:
        return wh.record_failed_run(
            name,
            started_at=started_at,
            error=f"skipped: {_one_line(exc)}",
            captures=tuple(recorder.captures) if recorder else (),
        )
    except Exception as exc:  # one source's failure, whatever it is, must not stop the others
        log.warning("%s failed: %s", name, _one_line(exc)[:300])
        return wh.record_failed_run(
            name,
            started_at=started_at,
            error=_one_line(exc),
            captures=tuple(recorder.captures) if recorder else (),
        )
    return wh.ingest_run(
        name,
        records,
        recorder.captures,
        started_at=started_at,
        observed_at=observed_at,
        complete=complete,
    )


def refresh(
    wh, sources: list[str] | None = None, *, http_factory=Http, on_progress: Progress | None = None
):
    """Refresh `sources` (default: all) into warehouse `wh`; one RunResult per source, in order."""
    results = []
    for name in check_sources(sources):
        if on_progress:
            on_progress(name, "start", None)
        result = run_source(wh, name, http_factory=http_factory)
        log.info(
            "%s: %s, %s rows seen, %s changed%s",
            name,
            result.status,
            result.rows_seen,
            result.rows_changed,
            f" ({result.error})" if result.error else "",
        )
        if on_progress:
            on_progress(name, "done", result)
        results.append(result)
    return results


def reparse(wh, run_id: int):
    """Parse the raw responses stored for `run_id` with today's parser and ingest them as a new run.

    The prices are observed when the responses were fetched, not now: a run older than the
    source's newest observation is backfilled at its own date (see Warehouse.ingest_run).
    """
    info = wh.run_info(run_id)
    name = info["source"]
    captures = wh.captures_for_run(run_id)
    started_at = datetime.now(UTC)
    if not captures:
        return wh.record_failed_run(
            name, started_at=started_at, error=f"reparse: run {run_id} has no stored responses"
        )
    fetched_at = min(c.fetched_at for c in captures)
    try:
        records, complete = parse_captures(get_source(name), name, captures, fetched_at)
    except Exception as exc:
        return wh.record_failed_run(
            name,
            started_at=started_at,
            error=f"reparse of run {run_id}: {_one_line(exc)}",
            captures=tuple(captures),
        )
    return wh.ingest_run(
        name, records, captures, started_at=started_at, observed_at=fetched_at, complete=complete
    )
