"""Rebuild the shipped offline price snapshot (warehouse/snapshot) from dated public files in the repo.

Runs every source's own parser over its recorded files, oldest first, into a temporary
warehouse with each file's date as its observation date and that date's quality (`exact`,
`release_date` or `approximate`, see warehouse/records.py), then writes the snapshot. Only the
extracted prices reach the snapshot. The inputs are scripts/data/prices/*.gz (recorded
responses, origin and licence in its SOURCES.md) and scripts/data/litellm_history (LiteLLM's
price map from many PyPI releases, dated by PyPI's upload-time). Offline and deterministic:
the same files give the same periods.parquet.

Example:

    .venv/bin/python scripts/build_snapshot.py --out warehouse/snapshot
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from scrapers.registry import SOURCES, get_source
from warehouse import Warehouse
from warehouse.records import OBSERVED_AT_QUALITIES, RawCapture

DATA = Path(__file__).parent / "data"
PRICES = DATA / "prices"
LITELLM_HISTORY = DATA / "litellm_history"
LLM_PRICES_VENDORS = ("amazon", "anthropic", "deepseek", "google", "meta-ai", "minimax",
                      "mistral", "moonshot-ai", "openai", "qwen", "xai")  # fmt: skip


def litellm_runs(history: Path = LITELLM_HISTORY) -> list[tuple[str, list[str], str, str, str]]:
    """One run per stored LiteLLM release, observed at its wheel's PyPI upload-time."""
    releases = json.loads((history / "releases.json").read_text())
    return [
        ("litellm", [f"../litellm_history/{v}.json.gz"], meta["upload_time"], "release_date",
         f"litellm {v} wheel uploaded to PyPI (sha256 {meta['sha256'][:12]})")
        for v, meta in releases.items()
    ]  # fmt: skip


# (source, files under scripts/data/prices, observation date, its quality, where the date comes
# from). One entry is one scrape run; files of one entry are parsed together, as one refresh
# would fetch them. Entries of one source run in date order, so the snapshot keeps the real
# price changes between them. A commit date is `release_date`: the file was current then.
RUNS: list[tuple[str, list[str], str, str, str]] = [
    ("openrouter", ["openrouter_models.json"], "2026-07-30", "release_date",
     "genai-prices fixture commit e0266f30"),
    ("llm_prices",
     ["simonw_llm_prices_current_v1_trimmed.json"]
     + [f"simonw_llm_prices_{v}.json" for v in LLM_PRICES_VENDORS],
     "2026-08-05", "release_date",
     "simonw/llm-prices HEAD 723ef0bd; its dated periods are stored as stated (exact)"),
    ("modal", ["modal_pricing_page.html"], "2025-06-12", "release_date",
     "gpu-price-tracker commit 2c54a538"),
    ("gpu_purchase", ["gpu_purchase_price_history_rows.csv"], "2025-05-05", "release_date",
     "gpu-price-tracker commit 69143345"),
    ("azure", ["azure_gpu_retail_prices_projection.json"], "2025-06-21", "release_date",
     "gpu_prices commit 54424a76"),
    ("aws",
     ["aws_offer_us-east-2_excerpt.json", "aws_offer_us-east-1_excerpt.json",
      "aws_offer_cn-northwest-1_excerpt.json"],
     "2024-05-28", "exact",
     "offer file version 20240528203522 (the newest of the three); one run so regions do not "
     "close each other"),
    ("aws_vantage", ["aws_gpu_instances_vantage_2025-11-30.js"], "2025-11-30", "exact",
     "the file's own 'Last updated: 2025-11-30' line, tsaol/aws-gpu commit 50d6dce9"),
    ("aws_vantage", ["aws_gpu_instances_vantage_2026-01-21.js"], "2026-01-21", "exact",
     "the file's own 'Last updated: 2026-01-21' line, tsaol/aws-gpu commit 7412fd25"),
    # Catalog commit 001367d2 carries no readable date. Stand-in: p5.48xlarge is 98.32 here, the
    # price before AWS's mid-2025 P4/P5 cut (55.04 in the 2025-11-30 export), and p5en/trn2 rows
    # exist (launched late 2024).
    ("aws_skypilot", ["skypilot_aws_vms_gpu.csv"], "2025-05-01", "approximate",
     "stand-in date (skypilot v7 aws catalog 001367d2)"),
    ("gcp", ["gcp_billing_skus.json"], "2023-08-14", "release_date",
     "opencost skus.json last changed 42976a2b"),
    ("gcp", ["gcp_billing_gpu_skus.json"], "2025-06-17", "release_date",
     "gpu_prices commit 2e0273be"),
    # SkyPilot catalog commits carry no date we could read: the order is known (v6 before v7,
    # GH200 3.19 -> 1.49), the days are stand-ins.
    ("lambda", ["skypilot_lambda_vms_v6_098741e7.csv"], "2025-01-01", "approximate",
     "stand-in date (v6 catalog)"),
    ("lambda", ["skypilot_lambda_vms_11580132.csv"], "2025-06-01", "approximate",
     "stand-in date (v7 catalog)"),
    ("runpod", ["runpod_gpu_prices.json"], "2025-05-17", "release_date",
     "gpu-price-tracker commit 559697ed"),
    # CSV and GraphQL in one run: as separate runs of one source they would close each other's
    # rows. The catalog's own date is unknown, hence approximate for the run.
    ("runpod", ["skypilot_runpod_vms_0727c2bd.csv", "runpod_graphql_gpu_types.json"],
     "2025-06-21", "approximate",
     "gpu_prices commit 13a47f94 (GraphQL) with the undated v7 SkyPilot catalog"),
    ("vast", ["skypilot_vast_vms_00690e76.csv"], "2025-06-01", "approximate",
     "stand-in date (v7 catalog)"),
]  # fmt: skip


def _when(text: str) -> datetime:
    """A day (YYYY-MM-DD) or an ISO timestamp (PyPI's upload-time), as aware UTC."""
    if len(text) == 10:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _read(path: Path) -> bytes:
    """A recorded file, stored gzipped (`name.gz`) in the repo; a plain file is read as is."""
    gz = path if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    if gz.exists():
        return gzip.decompress(gz.read_bytes())
    return path.read_bytes()


def build(data: Path, out: Path, *, echo=print) -> Path:
    """Parse every recorded file into a temporary warehouse and write its snapshot to `out`."""
    runs = RUNS + litellm_runs()
    assert {source for source, *_ in runs} <= set(SOURCES)
    assert {quality for *_, quality, _ in runs} <= set(OBSERVED_AT_QUALITIES)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "build.duckdb", load_snapshot=False)
        for source, files, day, quality, why in sorted(runs, key=lambda run: _when(run[2])):
            when = _when(day)
            paths = [data / f for f in files]
            missing = [f for f, p in zip(files, paths, strict=True)
                       if not p.exists() and not p.with_name(p.name + ".gz").exists()]  # fmt: skip
            if missing:
                echo(f"{source} {day}: skipped, missing {', '.join(missing)}")
                failures += 1
                continue
            captures = [
                RawCapture(source, f"file:{Path(f).name}", when, 200, _read(p))
                for f, p in zip(files, paths, strict=True)
            ]
            try:
                records = get_source(source).parse(captures, when)
            except Exception as exc:  # report and go on: the other sources still build
                echo(f"{source} {day}: FAILED to parse: {exc}")
                failures += 1
                continue
            # No captures: prices are all the snapshot needs.
            result = wh.ingest_run(
                source, records, (), started_at=when, observed_at=when, observed_at_quality=quality
            )
            echo(
                f"{source} {day}: {result.status}, {result.rows_seen} prices, "
                f"{result.rows_changed} changed, {quality} ({why})"
                + (f": {result.error}" if result.error else "")
            )
            failures += result.status != "ok"
        note = "built by scripts/build_snapshot.py from dated public files in scripts/data"
        manifest = wh.write_snapshot(out, note=note)
        wh.close()
    echo(f"wrote {manifest} ({failures} run(s) failed or skipped)")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=PRICES,
        help="directory of recorded files (default: the repo's)",
    )
    parser.add_argument("--out", type=Path, default=Path("warehouse/snapshot"))
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data}: --data: not a directory", file=sys.stderr)
        return 2
    build(args.data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
