"""The advisor's ranked table as JSON, Parquet and a small HTML page with a cost vs p99-latency
Pareto chart (matplotlib PNG embedded)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
from pathlib import Path

import polars as pl

from sim.advise.search import Advice

# Columns every row has, in the order the table shows them (issue 12's list first).
COLUMNS = (
    "rank",
    "kind",
    "description",
    "provider",
    "term",
    "cost_usd_total",
    "cost_usd_per_month",
    "usd_per_mtok_input",
    "usd_per_mtok_output",
    "meets_slo",
    "slo_robust",
    "ttft_p99_s",
    "tpot_p99_s",
    "simulated",
    "why_not",
    "upfront_usd",
    "payback_months_vs_rental",
    "payback_months_vs_api",
    "region",
    "gpu",
    "tp",
    "precision",
    "success_rate",
    "cost_is_estimate",
    "screen_cost_usd",
    "screen_lower_bound_usd",
    "overrun_s",
    "overrun_variable_usd",
    "price_source",
    "assumptions",
    "from_scenario",
)


def to_json(advice: Advice, top: int | None = None) -> dict:
    rows = advice.rows if top is None else advice.rows[:top]
    return {
        "scenario": advice.scenario,
        "price_as_of": advice.price_as_of,
        "slo": advice.slo,
        "span_s": advice.span_s,
        "screened": advice.screened,
        "simulated": advice.simulated,
        "replications": advice.replications,
        "seconds": {k: round(v, 3) for k, v in advice.seconds.items()},
        "notes": advice.notes,
        "kinds": sorted({r["kind"] for r in advice.rows}),
        "candidates": [{k: r.get(k) for k in COLUMNS} for r in rows],
    }


def frame(advice: Advice) -> pl.DataFrame:
    rows = [
        {**{k: r.get(k) for k in COLUMNS}, "assumptions": "; ".join(r.get("assumptions") or [])}
        for r in advice.rows
    ]
    schema = {k: pl.String for k in ("kind", "description", "provider", "term", "why_not")}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def write_run_dir(advice: Advice, out_dir: Path | None) -> Path:
    """advice.json, advice.parquet and advice.html in a fresh run directory."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(out_dir) if out_dir else Path("runs") / f"advise-{advice.scenario}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "advice.json.tmp"
    tmp.write_text(json.dumps(to_json(advice), indent=2, default=str), encoding="utf-8")
    tmp.replace(run_dir / "advice.json")
    frame(advice).write_parquet(run_dir / "advice.parquet")
    (run_dir / "advice.html").write_text(html_page(advice), encoding="utf-8")
    return run_dir


def pareto_png(advice: Advice) -> bytes:
    """Simulated candidates: cost per month against TTFT p99, the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [
        r
        for r in advice.rows
        if r["simulated"] and r["ttft_p99_s"] is not None and r["cost_usd_per_month"] is not None
    ]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    colors = {
        "api": "tab:blue",
        "cloud": "tab:orange",
        "self_hosted": "tab:green",
        "mix": "tab:red",
    }
    for kind, color in colors.items():
        mine = [r for r in pts if r["kind"] == kind]
        if mine:
            ax.scatter(
                [r["ttft_p99_s"] for r in mine],
                [r["cost_usd_per_month"] for r in mine],
                c=color,
                label=kind,
                marker="o",
                edgecolors=["black" if r["meets_slo"] else "none" for r in mine],
            )
    front = pareto_front([(r["ttft_p99_s"], r["cost_usd_per_month"]) for r in pts])
    if front:
        ax.plot(*zip(*front, strict=True), color="grey", linestyle="--", linewidth=1)
    target = advice.slo.get("ttft_p99_s")
    if target:
        ax.axvline(target, color="grey", linewidth=0.8)
    ax.set_xlabel("TTFT p99 (s)")
    ax.set_ylabel("USD per 730-hour month")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{advice.scenario}: simulated candidates (outlined = meets the SLO)", fontsize=9)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both latency and cost, by increasing latency."""
    front: list[tuple[float, float]] = []
    best = math.inf
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def html_page(advice: Advice, limit: int = 60) -> str:
    png = base64.b64encode(pareto_png(advice)).decode("ascii")
    cols = COLUMNS[:15] + ("gpu", "tp", "price_source", "assumptions")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in advice.rows[:limit]
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in advice.notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>infercost advise: {html.escape(advice.scenario)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 5px;vertical-align:top}}th{{background:#eee}}</style></head>
<body><h1>Advice for {html.escape(advice.scenario)}</h1>
<p>Prices as of {html.escape(advice.price_as_of)}. {advice.screened} candidates screened,
{advice.simulated} simulated with {advice.replications} replications (same seed: common random
numbers). Costs of unsimulated rows are screen estimates. <code>slo_robust</code> is empty until
the step model's calibrated error band is available.</p>
<img alt="cost vs TTFT p99" src="data:image/png;base64,{png}">
<h2>Ranked candidates (first {min(limit, len(advice.rows))} of {len(advice.rows)})</h2>
<table><tr>{head}</tr>
{body}
</table>
<h2>Notes</h2><ul>{notes}</ul>
</body></html>
"""
