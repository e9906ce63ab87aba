"""Price-history replay: cost the same scenario at several price dates to see how the verdict moved.

The simulation runs with the same seed at every date, so latency and SLO are identical across dates
(common random numbers) and every difference in the table comes from prices alone.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from sim.analysis.runner import Evaluate, evaluate_all, simulate_summary
from sim.analysis.summary import verdict_rows
from sim.errors import InputError
from sim.scenario import Scenario

LATEST = "latest"


def parse_dates(text: str) -> list[str]:
    """`"2025-01-01,2025-07-01,latest"` -> those; `"2025-01..2025-06"` -> the 1st of each month.

    A range may also be written with full dates (`2025-01-15..2025-04-15`): it steps monthly on the
    same day of the month, or the month's last day where it has no such day.
    """
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == LATEST:
            out.append(LATEST)
        elif ".." in part:
            lo_text, hi_text = part.split("..", 1)
            out.extend(d.isoformat() for d in _monthly(_parse_day(lo_text), _parse_day(hi_text)))
        else:
            out.append(_parse_day(part).isoformat())
    if not out:
        raise InputError(
            "--as-of", None, "give dates like 2025-01-01,2025-07-01,latest or 2025-01..2025-12"
        )
    return list(dict.fromkeys(out))  # keep order, drop repeats


def _parse_day(text: str) -> date:
    text = text.strip()
    try:
        return date.fromisoformat(text + "-01" if len(text) == 7 else text)
    except ValueError:
        raise InputError("--as-of", None, f"not a date (YYYY-MM-DD or YYYY-MM): {text!r}") from None


def _monthly(lo: date, hi: date) -> list[date]:
    if hi < lo:
        raise InputError("--as-of", None, f"range ends before it starts: {lo}..{hi}")
    days, year, month = [], lo.year, lo.month
    while True:
        # A day a month lacks (the 31st in April) becomes that month's last day.
        current = date(year, month, min(lo.day, calendar.monthrange(year, month)[1]))
        if current > hi:
            return days
        days.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def replay(
    scenario: Scenario,
    dates: Sequence[str],
    *,
    seed: int | None = None,
    replications: int | None = None,
    workers: int | None = None,
    evaluate: Evaluate = simulate_summary,
) -> pl.DataFrame:
    """One row per (price date, fleet), in the given date order, with the verdict at each date."""
    variants = [scenario.varied([f'scenario.price_as_of="{as_of}"']) for as_of in dates]
    summaries = evaluate_all(
        evaluate, variants, seed=seed, replications=replications, workers=workers
    )
    rows = []
    for as_of, summary in zip(dates, summaries, strict=True):
        prices = {f.name: f.prices for f in summary.fleets}
        for row in verdict_rows(summary, as_of=as_of):
            row["prices_json"] = json.dumps(
                prices.get(row["fleet"], {}), sort_keys=True, default=str
            )
            rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def verdicts(df: pl.DataFrame) -> list[tuple[str, str | None]]:
    """(price date, cheapest fleet meeting the SLO or None), in table order."""
    out = []
    for (as_of,), part in df.group_by(["as_of"], maintain_order=True):
        chosen = part.filter(pl.col("cheapest"))["fleet"].to_list()
        out.append((as_of, chosen[0] if chosen else None))
    return out


def write_replay(out_dir: Path, df: pl.DataFrame) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out_dir / "replay.parquet")
