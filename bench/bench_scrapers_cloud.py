"""Parse time per cloud GPU source over the recorded files, and a refresh of those sources
against a local HTTP server.

Run: .venv/bin/python bench/bench_scrapers_cloud.py [--fixtures DIR]   (default: tests/fixtures/prices)
With the full recorded files (not in the repo) pass their directory.
"""

from __future__ import annotations

import argparse
import http.server
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scrapers.refresh import refresh  # noqa: E402
from scrapers.registry import get_source  # noqa: E402
from warehouse import Warehouse  # noqa: E402
from warehouse.records import RawCapture  # noqa: E402

# source -> candidate files, full recording first, repo excerpt second
FILES = {
    "azure": [
        "azure_gpu_retail_prices_projection.json",
        "azure_gpu_retail_prices_projection_excerpt.json",
    ],
    "aws": ["aws_offer_us-east-1_excerpt.json"],
    "gcp": ["gcp_billing_gpu_skus.json", "gcp_billing_gpu_skus_excerpt.json"],
    "lambda": ["skypilot_lambda_vms_11580132.csv", "skypilot_lambda_vms_v7_excerpt.csv"],
    "runpod": ["skypilot_runpod_vms_0727c2bd.csv", "skypilot_runpod_vms_excerpt.csv"],
    "vast": ["skypilot_vast_vms_00690e76.csv", "skypilot_vast_vms_excerpt.csv"],
}


def _first(fixtures: Path, names: list[str]) -> Path | None:
    return next((fixtures / n for n in names if (fixtures / n).exists()), None)


def bench_parse(fixtures: Path, repeat: int = 5) -> None:
    now = datetime.now(UTC)
    print(f"{'source':<8}{'file':<46}{'MB':>7}{'records':>9}{'best s':>9}")
    for source, names in FILES.items():
        path = _first(fixtures, names)
        if path is None:
            continue
        body = path.read_bytes()
        module = get_source(source)
        caps = [RawCapture(source, path.name, now, 200, body)]
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            records = module.parse(caps, now)
            best = min(best, time.perf_counter() - t)
        print(f"{source:<8}{path.name:<46}{len(body) / 1e6:>7.2f}{len(records):>9}{best:>9.3f}")


def bench_refresh(fixtures: Path) -> None:
    handler = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(fixtures))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    sources = [s for s, names in FILES.items() if _first(fixtures, names)]
    for s in sources:
        os.environ[f"INFERCOST_{s.upper()}_URL"] = f"{base}/{_first(fixtures, FILES[s]).name}"
    os.environ["INFERCOST_GCP_API_KEY"] = "bench"  # the local server ignores it
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "b.duckdb", load_snapshot=False)
        for label in ("first refresh (all new)", "second refresh (unchanged)"):
            t = time.perf_counter()
            results = refresh(wh, sources)
            dt = time.perf_counter() - t
            rows = sum(r.rows_seen for r in results)
            status = ", ".join(f"{r.source}={r.status}" for r in results)
            print(f"{label}: {dt:.2f} s, {rows} prices ({status})")
        wh.close()
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "prices")
    args = parser.parse_args()
    bench_parse(args.fixtures)
    bench_refresh(args.fixtures)


if __name__ == "__main__":
    main()
