"""The report's charts, drawn with matplotlib's object API and rendered to inline SVG for the HTML
plus a PNG beside it. No pyplot: no global figure state, and the caller's backend is left alone
(Figure.savefig renders through Agg/SVG canvases whatever the backend).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from sim.report.rundir import RunData

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
GPU_KINDS = ("cloud", "self_hosted")


@dataclass
class Chart:
    name: str  # file stem of the PNG, and the chart's id in the HTML
    title: str
    caption: str
    figure: Figure


def render(chart: Chart, png_dir: Path) -> str:
    """Write `<png_dir>/<name>.png` and return the chart as SVG markup to inline in HTML."""
    png_dir.mkdir(parents=True, exist_ok=True)
    # A fixed salt makes matplotlib's hashed ids (clip paths) repeatable: same run, same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": chart.name}):
        buf = io.StringIO()
        chart.figure.savefig(buf, format="svg", metadata={"Date": None})
        chart.figure.savefig(png_dir / f"{chart.name}.png", format="png", dpi=100)
    svg = buf.getvalue()
    return _prefix_ids(svg[svg.index("<svg") :], chart.name)


def _prefix_ids(svg: str, prefix: str) -> str:
    """Give every id in one chart's SVG the chart's prefix, references included.

    Inlined SVGs share the page's id space; matplotlib names groups `figure_1`, `axes_1` in every
    chart, and a clash would make one chart clip to another's rectangle.
    """
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


def fleet_colours(fleets: list[str]) -> dict[str, str]:
    return {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(fleets)}


def _time_axis(max_s: float) -> tuple[float, str]:
    if max_s > 3 * 3600:
        return 3600.0, "time (hours)"
    if max_s > 180:
        return 60.0, "time (minutes)"
    return 1.0, "time (s)"


def _figure(rows: int = 1, height: float = 3.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(9, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0].tolist()
    return fig, axes


def band_chart(
    data: RunData,
    metric: str,
    *,
    name: str,
    title: str,
    ylabel: str,
    caption: str,
    kinds: tuple[str, ...] | None = None,
) -> Chart | None:
    """Mean line per fleet with its 5-95% band across replications."""
    band = data.band(metric)
    if band is None or band.is_empty():
        return None
    kinds_of = data.fleet_kinds
    fleets = [f for f in kinds_of if kinds is None or kinds_of[f] in kinds]
    fleets = [f for f in fleets if f in set(band["fleet"].to_list())]
    if not fleets:
        return None
    colours = fleet_colours(list(kinds_of))
    divisor, xlabel = _time_axis(float(band["window_start_s"].max()))
    fig, (ax,) = _figure()
    for fleet in fleets:
        part = band.filter(pl.col("fleet") == fleet).sort("window_start_s")
        x = (part["window_start_s"] / divisor).to_numpy()
        ax.fill_between(
            x,
            part["p5"].to_numpy(),
            part["p95"].to_numpy(),
            color=colours[fleet],
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(x, part["mean"].to_numpy(), color=colours[fleet], label=fleet, linewidth=1.5)
    ax.set_ylim(bottom=0)  # costs, replicas and utilisation: zero is the honest baseline
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return Chart(name, title, caption, fig)


def latency_chart(data: RunData, slo_targets: dict[str, float]) -> Chart | None:
    """TTFT, TPOT and E2E latency, p50 (dashed) and p99 (solid, with its 5-95% band) per fleet.

    A panel whose values span more than 20x (one fleet failing while the others are fine) gets a
    log axis, so the failing fleet does not flatten the others; the SLO line is always in frame.
    """
    panels = [
        ("ttft", "time to first token (s)"),
        ("tpot", "time per output token (s)"),
        ("e2e", "end-to-end latency (s)"),
    ]
    bands = {f"{k}_{p}": data.band(f"{k}_{p}_s") for k, _ in panels for p in ("p50", "p99")}
    if all(b is None or b.is_empty() for b in bands.values()):
        return None

    def present(key: str) -> bool:
        return any(
            bands[f"{key}_{p}"] is not None and not bands[f"{key}_{p}"].is_empty()
            for p in ("p50", "p99")
        )

    panels = [(k, label) for k, label in panels if present(k)]
    kinds_of = data.fleet_kinds
    colours = fleet_colours(list(kinds_of))
    max_s = max(
        float(b["window_start_s"].max())
        for b in bands.values()
        if b is not None and not b.is_empty()
    )
    divisor, xlabel = _time_axis(max_s)
    fig, axes = _figure(rows=len(panels), height=2.8)
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        seen: list[float] = []
        for fleet in kinds_of:
            for pct, style in (("p50", "--"), ("p99", "-")):
                band = bands[f"{key}_{pct}"]
                if band is None:
                    continue
                part = band.filter(pl.col("fleet") == fleet).sort("window_start_s")
                if part.is_empty():
                    continue
                x = (part["window_start_s"] / divisor).to_numpy()
                seen += [v for v in part["mean"].to_list() if v is not None and v > 0]
                if pct == "p99":
                    ax.fill_between(
                        x,
                        part["p5"].to_numpy(),
                        part["p95"].to_numpy(),
                        color=colours[fleet],
                        alpha=0.15,
                        linewidth=0,
                    )
                ax.plot(
                    x,
                    part["mean"].to_numpy(),
                    style,
                    color=colours[fleet],
                    linewidth=1.3,
                    label=f"{fleet} {pct}",
                )
        target = slo_targets.get(f"{key}_p99_s")
        if target is not None:
            ax.axhline(
                target, color="black", linestyle=":", linewidth=1.5, label=f"SLO p99 {target:g} s"
            )
            seen.append(target)
        if seen and max(seen) / min(seen) > 20:
            ax.set_yscale("log")
            ax.set_ylim(min(seen) / 1.5, max(seen) * 1.5)
        elif seen:
            ax.set_ylim(0, max(seen) * 1.15)  # the SLO line sits inside the frame, not on it
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    _figure_legend(fig, [p for ax in axes for p in zip(*ax.get_legend_handles_labels(), strict=True)])  # fmt: skip
    axes[-1].set_xlabel(xlabel)
    title = "Latency percentiles over time"
    caption = (
        "Per window, mean across replications; dashed p50, solid p99 with its 5-95% band; "
        "dotted: the SLO target. A log axis where values span more than 20x."
    )
    return Chart("latency", title, caption, fig)


# Events drawn as markers on the replicas line: (timeseries column, marker, label).
EVENT_MARKERS = (
    ("scale_up", "^", "scale up"),
    ("scale_down", "v", "scale down"),
    ("cold_starts", "D", "cold start"),
    ("spot_kills", "X", "spot kill"),
)
# Events drawn as bars per window on a second axis.
EVENT_BARS = (
    ("preemptions", "#ff7f0e", "KV preemptions"),
    ("throttled", "#9467bd", "API throttles"),
)


def events_chart(data: RunData, flags: dict[str, str] | None = None) -> Chart | None:
    """One panel per fleet that scales or had events: replicas over time (mean across
    replications) with scaling, cold-start and spot-kill markers in the windows where they
    happened, and preemptions and throttles per window as bars. `flags`: a note per fleet for
    its panel title (e.g. the windows that missed the SLO)."""
    flags = flags or {}
    replicas = data.band("replicas")
    kinds_of = data.fleet_kinds
    bands = {k: data.band(k) for k, _, _ in EVENT_MARKERS}
    bands.update({k: data.band(k) for k, _, _ in EVENT_BARS})

    def series(band, fleet):
        if band is None or band.is_empty():
            return None
        part = band.filter(pl.col("fleet") == fleet).sort("window_start_s")
        return None if part.is_empty() else part

    def any_events(fleet):
        return any(
            (part := series(b, fleet)) is not None and float(part["mean"].fill_null(0).sum()) > 0
            for b in bands.values()
        )

    fleets = [f for f, kind in kinds_of.items() if kind == "cloud" or any_events(f)]
    if not fleets:
        return None
    colours = fleet_colours(list(kinds_of))
    max_s = max(
        float(b["window_start_s"].max())
        for b in (replicas, *bands.values())
        if b is not None and not b.is_empty()
    )
    divisor, xlabel = _time_axis(max_s)
    fig, axes = _figure(rows=len(fleets), height=2.2)
    legend: list = []  # (handle, label) of every panel, shown once beside them
    for ax, fleet in zip(axes, fleets, strict=True):
        reps = series(replicas, fleet)
        level = None
        if reps is not None and kinds_of[fleet] != "api":
            x = (reps["window_start_s"] / divisor).to_numpy()
            level = dict(zip(reps["window_start_s"].to_list(), reps["mean"].to_list(), strict=True))
            ax.step(
                x, reps["mean"].to_numpy(), where="post", color=colours[fleet], label="replicas"
            )
            ax.set_ylim(0, max(1.0, float(reps["mean"].max())) * 1.6)  # room for the strip
        # Markers in a strip along the top, one row per kind, so coinciding events stay legible.
        strip = ax.get_xaxis_transform()  # x in data, y in axes fraction
        for row, (key, marker, label) in enumerate(EVENT_MARKERS):
            part = series(bands[key], fleet)
            if part is None:
                continue
            part = part.filter(pl.col("mean") > 0)
            if part.is_empty():
                continue
            x = (part["window_start_s"] / divisor).to_numpy()
            ax.scatter(
                x, np.full(len(x), 0.93 - 0.09 * row), transform=strip, marker=marker, s=30,
                zorder=3, color="#d62728" if key == "spot_kills" else "black", label=label,
                clip_on=False,
            )  # fmt: skip
        bars = [(k, c, label, series(bands[k], fleet)) for k, c, label in EVENT_BARS]
        bars = [b for b in bars if b[3] is not None and float(b[3]["mean"].fill_null(0).sum()) > 0]
        if bars:
            twin = ax.twinx()
            width = float(np.median(np.diff(bars[0][3]["window_start_s"].to_numpy()))) if bars[0][3].height > 1 else 60.0  # fmt: skip
            for _key, colour, label, part in bars:
                twin.bar(
                    (part["window_start_s"] / divisor).to_numpy(),
                    part["mean"].fill_null(0).to_numpy(),
                    width=width / divisor, align="edge", color=colour, alpha=0.35, label=label,
                )  # fmt: skip
            twin.set_ylabel("per window", fontsize="small")
            legend += list(zip(*twin.get_legend_handles_labels(), strict=True))
        ax.set_ylabel("replicas" if level else "")
        title = fleet + (f": {flags[fleet]}" if flags.get(fleet) else "")
        ax.set_title(title, fontsize="medium", loc="left")
        ax.grid(alpha=0.3)
        legend += list(zip(*ax.get_legend_handles_labels(), strict=True))
    _figure_legend(fig, legend)
    axes[-1].set_xlabel(xlabel)
    caption = (
        "Per window, mean across replications: replicas (line); along the top, the windows with a "
        "scale-up (^), scale-down (v), cold start (diamond) or spot kill (X); KV preemptions and "
        "API throttles per window (bars, right axis). Fleets that never scale and had no events "
        "are left out."
    )
    return Chart("events", "Events over time", caption, fig)


def _figure_legend(fig: Figure, entries: list) -> None:
    """One legend for all panels, outside them on the right (inside, it hid lines in one panel
    or another); `entries` are (handle, label) pairs, the first of each label kept."""
    seen: dict[str, object] = {}
    for handle, label in entries:
        seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside right upper", fontsize="x-small")


def breakeven_chart(df: pl.DataFrame, crossings: list[dict]) -> Chart:
    """Cost per 1k requests against traffic scale; hollow markers where the SLO is missed."""
    fig, (ax,) = _figure(height=3.6)
    fleets = list(dict.fromkeys(df["fleet"].to_list()))
    colours = fleet_colours(fleets)
    cost = (
        "usd_per_1k_requests" if df["usd_per_1k_requests"].drop_nulls().len() else "total_cost_usd"
    )
    for fleet in fleets:
        part = df.filter(pl.col("fleet") == fleet).sort("scale")
        ax.plot(
            part["scale"].to_numpy(),
            part[cost].to_numpy(),
            color=colours[fleet],
            label=fleet,
            linewidth=1.3,
        )
        for meets, marker in ((True, "o"), (False, "x")):
            sel = part.filter(pl.col("meets_slo") == meets)
            if not sel.is_empty():
                ax.scatter(
                    sel["scale"].to_numpy(),
                    sel[cost].to_numpy(),
                    color=colours[fleet],
                    marker=marker,
                    s=28,
                    zorder=3,
                )
    for crossing in crossings:
        ax.axvline(crossing["scale"], color="grey", linestyle=":", linewidth=1)
        if crossing.get("scale_ci95"):
            ax.axvspan(*crossing["scale_ci95"], color="grey", alpha=0.15, linewidth=0)
        ax.annotate(
            f"{crossing['scale']:.3g}x",
            (crossing["scale"], 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize="small",
        )
    ax.set_xscale("log")
    positive = df[cost].drop_nulls()
    if positive.len() and float(positive.min()) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("traffic scale (x the scenario's rate)")
    ax.set_ylabel("USD per 1k requests" if cost == "usd_per_1k_requests" else "total cost (USD)")
    ax.set_title("Break-even: cost against traffic (o meets the SLO, x misses it)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    caption = (
        "Dotted lines: scales where the cheapest fleet meeting the SLO changes; "
        "grey bands: their 95% CI from paired replications."
    )
    return Chart("breakeven", "Break-even curve", caption, fig)


def replay_chart(df: pl.DataFrame) -> Chart:
    """Each fleet's total cost at each price date, with its 95% CI."""
    fig, (ax,) = _figure()
    dates = list(dict.fromkeys(df["as_of"].to_list()))
    fleets = list(dict.fromkeys(df["fleet"].to_list()))
    colours = fleet_colours(fleets)
    for fleet in fleets:
        part = df.filter(pl.col("fleet") == fleet)
        by_date = {r["as_of"]: r for r in part.to_dicts()}
        xs = [
            i
            for i, d in enumerate(dates)
            if d in by_date and by_date[d]["total_cost_usd"] is not None
        ]
        ys = [by_date[dates[i]]["total_cost_usd"] for i in xs]
        lo = [by_date[dates[i]].get("total_cost_usd_lo") for i in xs]
        hi = [by_date[dates[i]].get("total_cost_usd_hi") for i in xs]
        if xs and all(v is not None for v in lo + hi):
            err = [
                [y - v for y, v in zip(ys, lo, strict=True)],
                [v - y for y, v in zip(ys, hi, strict=True)],
            ]
            ax.errorbar(xs, ys, yerr=err, color=colours[fleet], marker="o", capsize=3, label=fleet)
        else:
            ax.plot(xs, ys, color=colours[fleet], marker="o", label=fleet)
    ax.set_xticks(range(len(dates)), dates, rotation=30, ha="right")
    ax.set_ylabel("total cost (USD)")
    ax.set_title("Total cost at each price date")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return Chart(
        "replay",
        "Price-date replay",
        "Same traffic and seed at every date: only prices differ.",
        fig,
    )


def sweep_chart(df: pl.DataFrame, keys: list[str]) -> Chart:
    """Total cost of each fleet at each grid point; hollow x where the SLO is missed."""
    fig, (ax,) = _figure(height=3.6)
    points = df.select("point", *keys).unique(maintain_order=True).sort("point")
    labels = [", ".join(f"{k.split('.')[-1]}={r[k]}" for k in keys) for r in points.to_dicts()]
    fleets = list(dict.fromkeys(df["fleet"].to_list()))
    colours = fleet_colours(fleets)
    for fleet in fleets:
        part = df.filter(pl.col("fleet") == fleet).sort("point")
        ax.plot(
            part["point"].to_numpy(),
            part["total_cost_usd"].to_numpy(),
            color=colours[fleet],
            label=fleet,
            linewidth=0.8,
            alpha=0.5,  # grid points are not a continuum: the line only helps follow a fleet
        )
        for meets, marker in ((True, "o"), (False, "x")):
            sel = part.filter(pl.col("meets_slo") == meets)
            if not sel.is_empty():
                ax.scatter(
                    sel["point"].to_numpy(),
                    sel["total_cost_usd"].to_numpy(),
                    color=colours[fleet],
                    marker=marker,
                    s=28,
                    zorder=3,
                )
    ax.set_xticks(points["point"].to_list(), labels, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("total cost (USD)")
    ax.set_title("Sweep: total cost per grid point (o meets the SLO, x misses it)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return Chart("sweep", "Sweep", "One point per grid combination, in --grid order.", fig)


def price_history_chart(
    histories: list[tuple[str, pl.DataFrame]], as_of: str | None
) -> Chart | None:
    """Each priced SKU's price periods as steps, one panel per SKU (units differ), one line per
    (unit, source). Frames: valid_from, valid_to (null = still open), price, unit, source.
    """
    usable = [(label, df) for label, df in histories if df is not None and not df.is_empty()]
    if not usable:
        return None
    as_of_day = None
    if as_of and as_of != "latest":
        try:
            as_of_day = datetime.combine(date.fromisoformat(as_of[:10]), datetime.min.time())
        except ValueError:
            as_of_day = None
    # Open periods run to the right edge: a little past the last known date, not "now", so the
    # same warehouse gives the same chart whenever the report is drawn.
    known = [
        d
        for _, df in usable
        for col in ("valid_from", "valid_to")
        for d in df[col].drop_nulls().to_list()
    ]
    known += [as_of_day] if as_of_day else []
    span = max(known) - min(known)
    right = max(known) + max(span / 10, timedelta(days=30))
    fig, axes = _figure(rows=len(usable), height=2.4)
    for ax, (label, df) in zip(axes, usable, strict=True):
        lines = df.sort("valid_from").group_by(["unit", "source"], maintain_order=True)
        for i, ((unit, source), part) in enumerate(lines):
            xs, ys = [], []
            for start, end, price in part.select("valid_from", "valid_to", "price").rows():
                xs += [start, end or right]
                ys += [price, price]
            name = f"{unit} ({source})" if source else str(unit)
            ax.plot(xs, ys, marker=".", markevery=2, color=COLOURS[i % len(COLOURS)], label=name)
        if as_of_day:
            ax.axvline(as_of_day, color="black", linestyle=":", linewidth=1)
        ax.set_title(label, fontsize="medium")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="x-small")
    caption = "From the warehouse's price periods; dotted line: the price date this run used."
    return Chart("price_history", "Price history of the priced SKUs", caption, fig)


def finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
