"""Parse time per source over the recorded files, and a full refresh against a local server.

Run: .venv/bin/python bench/bench_scrapers.py [--group api|cloud|all] [--fixtures DIR]
(default fixtures: the excerpts in tests/fixtures/prices; pass the full recorded files' directory
for the figures in bench/RESULTS.md).
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

# source -> candidate recorded files one refresh would fetch, full recording first, excerpt second
API_FILES = {
    "litellm": ["litellm_model_prices_1.110.2.json"],
    "openrouter": ["openrouter_models.json"],
    "llm_prices": ["simonw_llm_prices_current_v1_trimmed.json"],
    "modal": ["modal_pricing_page.html", "modal_pricing_excerpt.html"],
    "gpu_purchase": [
        "gpu_purchase_price_history_rows.csv",
        "gpu_purchase_price_history_excerpt.csv",
    ],
}
CLOUD_FILES = {
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
GROUPS = {"api": API_FILES, "cloud": CLOUD_FILES, "all": {**API_FILES, **CLOUD_FILES}}


def _first(fixtures: Path, names: list[str]) -> Path | None:
    return next((fixtures / n for n in names if (fixtures / n).exists()), None)


def bench_parse(files: dict[str, list[str]], fixtures: Path, repeat: int = 5) -> None:
    now = datetime.now(UTC)
    print(f"{'source':<14}{'file':<48}{'MB':>7}{'records':>9}{'best s':>9}")
    for source, names in files.items():
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
        print(f"{source:<14}{path.name:<48}{len(body) / 1e6:>7.2f}{len(records):>9}{best:>9.3f}")


def bench_refresh(files: dict[str, list[str]], fixtures: Path) -> None:
    handler = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(fixtures))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    # llm_prices fetches per-vendor files next to its index: not servable from one flat directory.
    sources = [s for s, names in files.items() if s != "llm_prices" and _first(fixtures, names)]
    for s in sources:
        os.environ[f"INFERCOST_{s.upper()}_URL"] = f"{base}/{_first(fixtures, files[s]).name}"
    os.environ["INFERCOST_GCP_API_KEY"] = "bench"  # the local server ignores it
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "b.duckdb", load_snapshot=False)
        for label in ("first refresh (all new)", "second refresh (unchanged)"):
            t = time.perf_counter()
            results = refresh(wh, sources)
            dt = time.perf_counter() - t
            rows = sum(r.rows_seen for r in results)
            status = ", ".join(f"{r.source}={r.status}" for r in results)
            print(f"{label}: {dt:.2f} s for {rows} prices over HTTP ({status})")
        wh.close()
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", choices=sorted(GROUPS), default="all")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "prices")
    args = parser.parse_args()
    print(f"fixtures: {args.fixtures}")
    files = GROUPS[args.group]
    bench_parse(files, args.fixtures)
    bench_refresh(files, args.fixtures)


if __name__ == "__main__":
    main()
