"""A long-running process that refreshes prices on a cron schedule (APScheduler 3, blocking).

Missed runs coalesce into one, two refreshes never overlap, and SIGTERM/SIGINT stop it cleanly
after the refresh in progress (if any) has finished.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

DEFAULT_CRON = "0 2 * * *"  # 02:00 UTC: after most providers publish their daily price files
# A run missed by less than this (machine asleep, process restarted) still happens once.
MISFIRE_GRACE_S = 6 * 3600


def make_trigger(cron: str | None = DEFAULT_CRON, interval_s: float | None = None):
    """The trigger for `cron` (5 fields, UTC) or, when given, a fixed `interval_s` (for tests)."""
    if interval_s is not None:
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        return IntervalTrigger(seconds=interval_s, timezone=UTC)
    return CronTrigger.from_crontab(cron or DEFAULT_CRON, timezone=UTC)


def _stop(scheduler: BlockingScheduler) -> None:
    try:
        scheduler.shutdown(wait=False)
    except SchedulerNotRunningError:
        pass


def run_schedule(
    job: Callable[[], object],
    *,
    cron: str | None = DEFAULT_CRON,
    interval_s: float | None = None,
    run_now: bool = False,
    install_signal_handlers: bool = True,
) -> BlockingScheduler:
    """Run `job` on the schedule until SIGTERM/SIGINT; returns the stopped scheduler."""
    trigger = make_trigger(cron, interval_s)
    # One worker thread: with max_instances=1 a second refresh could never start anyway.
    executor = ThreadPoolExecutor(max_workers=1)
    scheduler = BlockingScheduler(timezone=UTC, executors={"refresh": executor})
    runs = {"n": 0}

    def guarded() -> None:
        runs["n"] += 1
        n = runs["n"]
        log.info("refresh run %d started", n)
        try:
            outcome = job()
        except Exception:
            # The job itself broke (not a source: those are handled inside the refresh); the
            # schedule lives on and tries again next time.
            log.exception("refresh run %d failed", n)
            return
        log.info("refresh run %d finished: %s", n, outcome)

    def on_event(event) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("a scheduled refresh was missed (coalesced into the next one)")

    scheduler.add_listener(on_event, EVENT_JOB_MISSED)
    job_options = {}
    if run_now:
        job_options["next_run_time"] = datetime.now(UTC)
    scheduler.add_job(
        guarded,
        trigger,
        id="refresh",
        name="price refresh",
        executor="refresh",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_S,
        **job_options,
    )

    if install_signal_handlers:

        def stop(signum, _frame) -> None:
            log.info("received %s, stopping after the current refresh", signal.Signals(signum).name)
            # The handler runs in the main thread, possibly in the middle of the scheduler's own
            # job bookkeeping (it holds a re-entrant lock); shutting down from here can pull
            # the job store out from under it. Another thread waits for that lock properly.
            if scheduler.running:  # a second signal while stopping is harmless
                threading.Thread(target=_stop, args=(scheduler,), daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    log.info("price refresh scheduled (%s); waiting", trigger)
    scheduler.start()
    # start() returns once shutdown was requested; the executor may still run the current
    # refresh, so wait for it before the process exits.
    executor.shutdown(wait=True)
    log.info("scheduler stopped")
    return scheduler
