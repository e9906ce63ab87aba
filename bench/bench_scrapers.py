"""Parse time per source over the recorded files, and a full refresh against a local server.

Run: .venv/bin/python bench/bench_scrapers.py [--fixtures DIR]   (default: tests/fixtures/prices)
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

# source -> the recorded file(s) one refresh would fetch, under the fixtures directory
FILES = {
    "litellm": ["litellm_model_prices_1.110.2.json"],
    "openrouter": ["openrouter_models.json"],
    "llm_prices": ["simonw_llm_prices_current_v1_trimmed.json"],
    "modal": ["modal_pricing_page.html", "modal_pricing_excerpt.html"],
    "gpu_purchase": [
        "gpu_purchase_price_history_rows.csv",
        "gpu_purchase_price_history_excerpt.csv",
    ],
}


def _first(fixtures: Path, names: list[str]) -> Path | None:
    return next((fixtures / n for n in names if (fixtures / n).exists()), None)


def bench_parse(fixtures: Path, repeat: int = 5) -> None:
    now = datetime.now(UTC)
    print(f"{'source':<14}{'file':<48}{'MB':>7}{'records':>9}{'best s':>9}")
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
        print(f"{source:<14}{path.name:<48}{len(body) / 1e6:>7.2f}{len(records):>9}{best:>9.3f}")


def bench_refresh(fixtures: Path) -> None:
    handler = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(fixtures))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    sources = [s for s, names in FILES.items() if s != "llm_prices" and _first(fixtures, names)]
    for s in sources:
        os.environ[f"INFERCOST_{s.upper()}_URL"] = f"{base}/{_first(fixtures, FILES[s]).name}"
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
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "prices")
    args = parser.parse_args()
    print(f"fixtures: {args.fixtures}")
    bench_parse(args.fixtures)
    bench_refresh(args.fixtures)


if __name__ == "__main__":
    main()
