"""The refresh scheduler: no overlapping runs, survives failures, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scrapers.schedule import make_trigger, run_schedule

SIM = Path(sys.executable).with_name("sim")


def test_bad_cron_is_refused():
    with pytest.raises(ValueError):
        make_trigger("every night")
    with pytest.raises(ValueError):
        make_trigger(interval_s=0)
    assert "cron" in str(make_trigger("0 2 * * *")).lower()


def test_runs_never_overlap_and_failures_do_not_stop_it():
    active, peak, runs = [0], [0], []
    lock = threading.Lock()

    def job():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        runs.append(time.monotonic())
        try:
            time.sleep(0.15)  # longer than the 0.05 s interval: runs would pile up
            if len(runs) == 2:
                raise RuntimeError("source exploded")
            if len(runs) >= 4:
                os.kill(os.getpid(), signal.SIGTERM)
        finally:
            with lock:
                active[0] -= 1

    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        scheduler = run_schedule(job, interval_s=0.05, run_now=True)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
    assert not scheduler.running
    assert peak[0] == 1  # max_instances=1
    assert len(runs) >= 4  # the failing 2nd run did not stop the schedule


def test_sim_prices_schedule_in_a_subprocess(tmp_path, serve, fixture_bytes):
    serve("openrouter", "/models", fixture_bytes("openrouter_models.json"))
    serve("modal", "/pricing", "gone", status=404)  # a failing source every time
    env = dict(os.environ)
    log_path = tmp_path / "schedule.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(SIM),
                "--db",
                str(tmp_path / "w.duckdb"),
                "prices",
                "schedule",
                "--interval-s",
                "0.5",
                "--run-now",
                "--source",
                "openrouter",
                "--source",
                "modal",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 40
            while "refresh run 2 finished" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log_path.read_text()
    assert "refresh run 1 finished: 1 failed, 1 ok" in text
    assert "received SIGTERM" in text and "scheduler stopped" in text
    assert "Traceback" not in text
