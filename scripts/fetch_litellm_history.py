"""Fetch LiteLLM's price map from many PyPI releases into scripts/data/litellm_history (run by hand).

Each release's date is the wheel's `upload-time` from PyPI's JSON simple API (PEP 691/700), not a
file timestamp inside the wheel (zip entries are fixed at 1980). Each map is trimmed to the keys
`scrapers.litellm.parse` reads, written gzipped with a fixed mtime, and listed in SOURCES.md with
the wheel's sha256. The snapshot build then reads only these files, offline.

Example:

    .venv/bin/python scripts/fetch_litellm_history.py --months 2024-11,2025-01 --versions 1.56.5
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from scrapers.litellm import KEPT_KEYS, trim_map

SIMPLE_URL = "https://pypi.org/simple/litellm/"
MAP_PATHS = ("litellm/model_prices_and_context_window_backup.json",)
OUT = Path(__file__).parent / "data" / "litellm_history"
_FINAL = re.compile(r"^litellm-(\d+\.\d+\.\d+)-")


def simple_index() -> dict:
    import urllib.request

    request = urllib.request.Request(
        SIMPLE_URL, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def _wheels(index: dict) -> list[dict]:
    return sorted(
        (f for f in index["files"] if f["filename"].endswith(".whl") and not f.get("yanked")),
        key=lambda f: f["upload-time"],
    )


def _wheel_of(wheels: list[dict], version: str) -> dict:
    """The release's py3-none-any wheel, else its manylinux x86_64 one, else any."""
    same = [w for w in wheels if w["filename"].startswith(f"litellm-{version}-")]
    pure = [w for w in same if w["filename"].endswith("py3-none-any.whl")]
    linux = [w for w in same if "manylinux" in w["filename"] and "x86_64" in w["filename"]]
    return {"version": version, **(pure or linux or same)[0]}


def first_release_per_month(index: dict, months: list[str]) -> list[dict]:
    """The wheel of the first final release uploaded in each month."""
    chosen = []
    wheels = _wheels(index)
    for month in months:
        for f in wheels:
            m = _FINAL.match(f["filename"])
            if m and f["upload-time"].startswith(month):
                chosen.append(_wheel_of(wheels, m[1]))
                break
        else:
            print(f"{month}: no final release with a wheel", file=sys.stderr)
    return chosen


def extract(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        for name in MAP_PATHS:
            if name in zf.namelist():
                return json.loads(zf.read(name))
    raise SystemExit(f"{wheel.name}: no price map at {', '.join(MAP_PATHS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", default="", help="comma-separated YYYY-MM")
    parser.add_argument("--versions", default="", help="comma-separated release versions")
    args = parser.parse_args(argv)
    index = simple_index()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    chosen = first_release_per_month(index, [m for m in args.months.split(",") if m])
    chosen += [_wheel_of(_wheels(index), v) for v in args.versions.split(",") if v]
    for wheel in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                 "--platform", "manylinux_2_28_x86_64", "--python-version", "3.12",
                 "-q", "-d", tmp, f"litellm=={wheel['version']}"],
                check=True, env={"PIP_CONSTRAINT": "", "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            (path,) = Path(tmp).glob("*.whl")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if path.name != wheel["filename"] or digest != wheel["hashes"]["sha256"]:
                # pip chose another file of the same release: take its own upload-time.
                (wheel,) = [f for f in index["files"] if f["filename"] == path.name]
            assert digest == wheel["hashes"]["sha256"], path.name
            trimmed = trim_map(extract(path))
        text = json.dumps(trimmed, sort_keys=True, separators=(",", ":")).encode()
        target = OUT / f"{wheel['version']}.json.gz"
        target.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
        rows.append((wheel["version"], wheel["upload-time"], path.name, digest, len(trimmed)))
        print(wheel["version"], wheel["upload-time"], target.stat().st_size, "bytes")
    _write_sources(rows)
    return 0


def _write_sources(rows: list[tuple]) -> None:
    listed = OUT / "releases.json"
    known = json.loads(listed.read_text()) if listed.exists() else {}
    for version, uploaded, wheel, digest, entries in rows:
        known[version] = {"upload_time": uploaded, "wheel": wheel, "sha256": digest,
                          "entries": entries}  # fmt: skip
    ordered = dict(sorted(known.items(), key=lambda kv: kv[1]["upload_time"]))
    listed.write_text(json.dumps(ordered, indent=1) + "\n")
    lines = [
        "# LiteLLM price maps by release",
        "",
        "`litellm/model_prices_and_context_window_backup.json` from the LiteLLM wheel of each release on",
        "PyPI (licence: MIT, Berri AI; the map is outside `enterprise/`). Written by",
        "`scripts/fetch_litellm_history.py`. The date of each release is the wheel file's `upload-time`",
        "from PyPI's JSON simple API (PEP 691 / PEP 700), stored as `observed_at_quality = release_date`:",
        "a price in the map may have been in force before the release that carried it.",
        "",
        f"Trimmed to the keys the parser reads ({', '.join(sorted(KEPT_KEYS))} and the token price",
        "keys matched by `scrapers/litellm.py`), JSON with sorted keys, gzip with mtime 0.",
        "The machine-readable list is `releases.json` (read by scripts/build_snapshot.py).",
        "",
        "Chosen: the first final release of roughly every other month, plus 1.55.0 and 1.56.5 (they",
        "carry `together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo`, 1.53.2 did not) and",
        "1.14.4/1.110.2 (the maps recorded earlier). PyPI as reached from here lists no litellm wheel uploaded between",
        "2023-12-14 and 2024-11-28, hence the gap; releases before 1.x (2023-10) carry no map file.",
        "",
        "| version | upload-time (UTC) | wheel | sha256 | entries |",
        "|---|---|---|---|---|",
    ]
    for version, meta in ordered.items():
        lines.append(
            f"| {version} | {meta['upload_time']} | {meta['wheel']} | {meta['sha256']} | "
            f"{meta['entries']} |"
        )
    (OUT / "SOURCES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
