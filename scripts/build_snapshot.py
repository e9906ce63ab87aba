"""Rebuild the shipped offline price snapshot (warehouse/snapshot) from recorded real responses.

Runs every source's own parser over its recorded files, oldest first, into a temporary
warehouse with each file's date as its observation date, then writes the snapshot. Only the
extracted prices (facts) reach the snapshot; the recorded files themselves are never copied.

Example:

    .venv/bin/python scripts/build_snapshot.py --fixtures ../shared/fixtures/prices \\
        --out warehouse/snapshot
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from scrapers.litellm import MAP_DATES
from scrapers.registry import SOURCES, get_source
from warehouse import Warehouse
from warehouse.records import RawCapture

# (source, files, observation date, where the date comes from). One entry is one scrape run;
# files of one entry are parsed together, as one refresh would fetch them. Entries of the same
# source run in date order so the snapshot holds the real price changes between them.
RUNS: list[tuple[str, list[str], str, str]] = [
    *[
        (
            "litellm",
            [f"litellm_model_prices_{v}.json"],
            day,
            f"litellm {v} release (see litellm.py)",
        )
        for v, day in MAP_DATES.items()
    ],
    (
        "openrouter",
        ["openrouter_models.json"],
        "2026-07-30",
        "genai-prices fixture commit e0266f30",
    ),
    (
        "llm_prices",
        ["simonw_llm_prices_current_v1_trimmed.json"]
        + [
            f"simonw_llm_prices_{v}.json"
            for v in (
                "amazon",
                "anthropic",
                "deepseek",
                "google",
                "meta-ai",
                "minimax",
                "mistral",
                "moonshot-ai",
                "openai",
                "qwen",
                "xai",
            )
        ],
        "2026-08-05",
        "simonw/llm-prices HEAD 723ef0bd (vendor files); the index says updated_at 2026-07-30",
    ),
    ("modal", ["modal_pricing_page.html"], "2025-06-12", "gpu-price-tracker commit 2c54a538"),
    ("gpu_purchase", ["gpu_purchase_price_history_rows.csv"], "2025-05-05", "commit 69143345"),
    (
        "azure",
        ["azure_gpu_retail_prices_projection.json"],
        "2025-06-21",
        "gpu_prices commit 54424a76",
    ),
    (
        "aws",
        [
            "aws_offer_us-east-2_excerpt.json",
            "aws_offer_us-east-1_excerpt.json",
            "aws_offer_cn-northwest-1_excerpt.json",
        ],
        "2024-05-28",
        "newest offer version in the files (20240528203522); one run so regions do not close each other",
    ),
    ("gcp", ["gcp_billing_skus.json"], "2023-08-14", "opencost skus.json last changed 42976a2b"),
    ("gcp", ["gcp_billing_gpu_skus.json"], "2025-06-17", "gpu_prices commit 2e0273be"),
    # SkyPilot catalog commits carry no date we could read: the order is known (v6 before v7,
    # GH200 3.19 -> 1.49), the days are stand-ins.
    ("lambda", ["skypilot_lambda_vms_v6_098741e7.csv"], "2025-01-01", "stand-in date (v6 catalog)"),
    ("lambda", ["skypilot_lambda_vms_11580132.csv"], "2025-06-01", "stand-in date (v7 catalog)"),
    ("runpod", ["runpod_gpu_prices.json"], "2025-05-17", "gpu-price-tracker commit 559697ed"),
    # CSV and GraphQL in one run: as separate runs of one source they would close each other's rows.
    (
        "runpod",
        ["skypilot_runpod_vms_0727c2bd.csv", "runpod_graphql_gpu_types.json"],
        "2025-06-21",
        "gpu_prices commit 13a47f94 (GraphQL) with the v7 SkyPilot catalog",
    ),
    ("vast", ["skypilot_vast_vms_00690e76.csv"], "2025-06-01", "stand-in date (v7 catalog)"),
]


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def build(fixtures: Path, out: Path, *, echo=print) -> Path:
    """Parse every recorded file into a temporary warehouse and write its snapshot to `out`."""
    assert {source for source, *_ in RUNS} <= set(SOURCES)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "build.duckdb", load_snapshot=False)
        for source, files, day, why in sorted(RUNS, key=lambda run: run[2]):
            when = _day(day)
            missing = [f for f in files if not (fixtures / f).exists()]
            if missing:
                echo(f"{source} {day}: skipped, missing {', '.join(missing)}")
                failures += 1
                continue
            try:
                module = get_source(source)
            except ImportError as exc:
                echo(f"{source} {day}: skipped, module not importable ({exc})")
                failures += 1
                continue
            captures = [
                RawCapture(source, f"fixture:{f}", when, 200, (fixtures / f).read_bytes())
                for f in files
            ]
            try:
                records = module.parse(captures, when)
            except Exception as exc:  # report and go on: the other sources still build
                echo(f"{source} {day}: FAILED to parse: {exc}")
                failures += 1
                continue
            # No captures: files without a licence must not travel, and prices are all we need.
            result = wh.ingest_run(source, records, (), started_at=when, observed_at=when)
            echo(
                f"{source} {day}: {result.status}, {result.rows_seen} prices, "
                f"{result.rows_changed} changed ({why})"
                + (f": {result.error}" if result.error else "")
            )
            failures += result.status != "ok"
        note = "built by scripts/build_snapshot.py from recorded real responses"
        manifest = wh.write_snapshot(out, note=note)
        wh.close()
    echo(f"wrote {manifest} ({failures} run(s) failed or skipped)")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, required=True, help="directory of recorded files")
    parser.add_argument("--out", type=Path, default=Path("warehouse/snapshot"))
    args = parser.parse_args(argv)
    if not args.fixtures.is_dir():
        print(f"error: {args.fixtures}: --fixtures: not a directory", file=sys.stderr)
        return 2
    build(args.fixtures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
