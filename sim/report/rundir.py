"""Read what a run (or analysis) directory holds, tolerating missing parts: reports render what exists."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sim.errors import InputError
from sim.summary import RunSummary

BAND_COLUMNS = ("fleet", "window_start_s", "metric", "mean", "p5", "p50", "p95")


@dataclass
class RunData:
    run_dir: Path
    summary: RunSummary | None = None
    resolved: dict | None = None
    timeseries: pl.DataFrame | None = None
    bands: pl.DataFrame | None = None
    breakeven: pl.DataFrame | None = None
    crossovers: list[dict] = field(default_factory=list)
    replay: pl.DataFrame | None = None
    sweep: pl.DataFrame | None = None
    analysis: dict | None = None  # analysis.json: which command and options made this directory

    @property
    def fleet_kinds(self) -> dict[str, str]:
        """Fleet name -> kind, in scenario order."""
        if self.summary:
            return {f.name: f.kind for f in self.summary.fleets}
        if self.timeseries is not None:
            pairs = self.timeseries.select("fleet", "kind").unique(maintain_order=True).rows()
            return dict(pairs)
        return {}

    def band(self, metric: str) -> pl.DataFrame | None:
        """Across-replication mean and 5/50/95th percentiles per fleet and window for `metric`.

        From bands.parquet when it has the metric, else computed from timeseries.parquet.
        """
        if self.bands is not None and metric in set(self.bands["metric"].unique().to_list()):
            return self.bands.filter(pl.col("metric") == metric).sort(["fleet", "window_start_s"])
        if self.timeseries is None or metric not in self.timeseries.columns:
            return None
        # NaN marks "no request finished in this window": it must not count as a value.
        value = pl.col(metric).cast(pl.Float64).fill_nan(None)
        return (
            self.timeseries.group_by(["fleet", "window_start_s"])
            .agg(
                value.mean().alias("mean"),
                value.quantile(0.05, "linear").alias("p5"),
                value.quantile(0.5, "linear").alias("p50"),
                value.quantile(0.95, "linear").alias("p95"),
            )
            .with_columns(pl.lit(metric).alias("metric"))
            .select(BAND_COLUMNS)
            .sort(["fleet", "window_start_s"])
        )

    @property
    def prices(self) -> dict[str, dict]:
        """Fleet name -> price provenance (provider, sku, region, term, source, valid_from, ...)."""
        found: dict[str, dict] = {}
        for fleet in (self.resolved or {}).get("fleets", []) or []:
            if isinstance(fleet, dict) and isinstance(fleet.get("prices"), dict) and fleet.get("name"):  # fmt: skip
                found[str(fleet["name"])] = fleet["prices"]
        for fleet in self.summary.fleets if self.summary else ():
            if fleet.prices:
                found[fleet.name] = fleet.prices
        if self.resolved and isinstance(self.resolved.get("prices"), dict):
            for name, prov in self.resolved["prices"].items():
                if isinstance(prov, dict):
                    found.setdefault(str(name), prov)
        if not found and self.replay is not None and "prices_json" in self.replay.columns:
            # A replay directory has no summary: the SKUs it priced are in its table (last date wins).
            for row in self.replay.select("fleet", "prices_json").to_dicts():
                prov = json.loads(row["prices_json"] or "{}")
                if prov:
                    found[row["fleet"]] = prov
        return found


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(str(run_dir), None, "no such run directory")
    data = RunData(run_dir=run_dir)
    summary = _json(run_dir / "summary.json")
    if summary is not None and not (
        isinstance(summary, dict) and isinstance(summary.get("fleets"), list)
    ):
        raise InputError(
            str(run_dir / "summary.json"), "fleets", "missing: not a summary written by sim run"
        )
    data.summary = RunSummary.from_json(summary) if summary is not None else None
    data.resolved = _json(run_dir / "scenario.resolved.json")
    data.timeseries = _parquet(run_dir / "timeseries.parquet")
    data.bands = _parquet(run_dir / "bands.parquet")
    data.breakeven = _parquet(run_dir / "breakeven.parquet")
    data.crossovers = _json(run_dir / "crossovers.json") or []
    data.replay = _parquet(run_dir / "replay.parquet")
    data.sweep = _parquet(run_dir / "sweep.parquet")
    data.analysis = _json(run_dir / "analysis.json")
    if all(
        part is None
        for part in (data.summary, data.timeseries, data.breakeven, data.replay, data.sweep)
    ):
        raise InputError(
            str(run_dir),
            None,
            "nothing to report (no summary.json, timeseries, breakeven, replay or sweep parquet)",
        )
    return data


def _json(path: Path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), None, f"not valid JSON: {exc}") from None


def _parquet(path: Path) -> pl.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for a damaged file
        raise InputError(str(path), None, f"cannot read parquet: {exc}") from None
