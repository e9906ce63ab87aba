"""Open report.html in headless Chromium: the page loads, every chart renders, no console errors.

The report carries its own self-check (sim/report/html.py TAIL_SCRIPT) that writes, onto <body>,
how many charts drew with a non-zero size and which script, load or CSP errors happened; this
test reads those attributes from the DOM Chromium dumps after the load event.
Skipped when no Chromium is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from sim.report.html import write_report
from sim.report.synthetic import write_synthetic_run

BROWSER = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on PATH (Debian package: chromium)"
)


def dump_dom(page, profile_dir) -> dict[str, str]:
    """The <body> attributes after load, from Chromium with networking and extras off."""
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # Without these Chromium resolves names over the real DNS server (16 lookups per page,
        # seen with strace): no test may reach past 127.0.0.1. What is left is a UDP connect()
        # probing IPv6 reachability, which sends no packet.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--dns-prefetch-disable",
        "--disable-features=AsyncDns,DnsOverHttps,NetworkTimeServiceQuerying,OptimizationHints",
        "--no-pings",
        "--disable-domain-reliability",
        "--disable-extensions",
        f"--user-data-dir={profile_dir}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, f"Chromium printed no DOM (exit {done.returncode}): {done.stderr[-2000:]}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("run"), replications=4, windows=12, seed=3)
    return write_report(run, warehouse=run / "absent.duckdb")  # never the user's default warehouse


def test_report_loads_and_every_chart_renders_without_errors(report, tmp_path):
    attrs = dump_dom(report, tmp_path / "profile")
    assert (
        attrs["data-charts-total"] == "6"
    )  # cost, cumulative cost, latency, replicas, events, busy
    assert attrs["data-charts-ok"] == "6"
    assert attrs["data-js-errors"] == "0", attrs.get("data-js-error-text")


def test_the_check_catches_an_external_load_and_a_blank_chart(report, tmp_path):
    # The same page with an image from the internet and a chart with no drawing: both must show.
    page = report.read_text()
    page = page.replace(
        "<h2>Charts</h2>",
        '<h2>Charts</h2><img src="https://example.invalid/x.png">'
        '<figure class="chart"><svg width="0" height="0"></svg></figure>',
        1,
    )
    broken = tmp_path / "broken.html"
    broken.write_text(page)
    attrs = dump_dom(broken, tmp_path / "profile")
    assert attrs["data-charts-total"] == "7" and attrs["data-charts-ok"] == "6"
    assert int(attrs["data-js-errors"]) >= 1
    assert "example.invalid" in attrs["data-js-error-text"]
