"""`report.html`: one self-contained page (inline SVG charts, inline CSS, no network) per run
directory, plus `charts/*.png`. Written after every `sim run`; `sim report RUN_DIR` redoes it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import polars as pl

from sim.analysis.breakeven import describe_crossover
from sim.report import charts as ch
from sim.report.rundir import RunData, load_run

# The page may load nothing from anywhere: a chart that tried would be blocked and show up as an
# error in the self-check below, instead of silently phoning home when opened.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f5f5f5}.verdict{font-size:1.1rem;padding:.6rem;background:#eef6ee;border-left:4px solid #2ca02c}
.verdict.none{background:#fbeeee;border-left-color:#d62728}.ci{color:#777;font-size:.8em}
figure.chart{margin:1rem 0}figure.chart svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.85rem}
.notes{color:#555;font-size:.9rem}
"""

# Collects script errors, failed loads and blocked requests before anything else runs.
HEAD_SCRIPT = """
window.__reportErrors=[];
window.addEventListener('error',function(e){window.__reportErrors.push(String(e.message||('failed to load '+((e.target&&(e.target.src||e.target.href))||e.type))));},true);
document.addEventListener('securitypolicyviolation',function(e){window.__reportErrors.push('blocked '+e.blockedURI+' by '+e.violatedDirective);});
(function(){var orig=console.error;console.error=function(){window.__reportErrors.push(Array.prototype.join.call(arguments,' '));return orig.apply(console,arguments);};})();
"""

# A self-check anyone (and the browser test) can read off the DOM: how many charts drew with a
# non-zero size and content, and which errors happened.
TAIL_SCRIPT = """
(function(){
var figs=document.querySelectorAll('figure.chart'),ok=0;
figs.forEach(function(f){var s=f.querySelector('svg');if(!s)return;var r=s.getBoundingClientRect();
if(r.width>0&&r.height>0&&s.querySelectorAll('path,line,text,use').length>0){ok++;f.setAttribute('data-rendered','yes');}});
function mark(){var b=document.body;b.setAttribute('data-charts-total',figs.length);b.setAttribute('data-charts-ok',ok);
b.setAttribute('data-js-errors',window.__reportErrors.length);b.setAttribute('data-js-error-text',window.__reportErrors.join(' | ').slice(0,1000));}
mark();window.addEventListener('load',mark);
})();
"""


def write_report(run_dir: Path, *, warehouse=None) -> Path:
    """Write `report.html` and `charts/*.png` into `run_dir`; return the HTML path.

    `warehouse` (a `warehouse.Warehouse` or a path to its DuckDB file) supplies the price history
    of the priced SKUs; without one the default warehouse is tried read-only, and when that fails
    the chart is left out with a note saying why.
    """
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    notes: list[str] = []
    charts = _charts(data, warehouse, notes)
    rendered = [(c, ch.render(c, run_dir / "charts")) for c in charts]
    page = _page(data, rendered, notes)
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _charts(data: RunData, warehouse, notes: list[str]) -> list[ch.Chart]:
    found: list[ch.Chart | None] = []
    if data.timeseries is not None or data.bands is not None:
        found += [
            ch.band_chart(
                data,
                "cost_usd",
                name="cost",
                title="Cost per window",
                ylabel="USD per window",
                caption="Mean across replications with the 5-95% band.",
            ),
            ch.band_chart(
                data,
                "cumulative_cost_usd",
                name="cumulative_cost",
                title="Cumulative cost",
                ylabel="USD",
                caption="Mean across replications with the 5-95% band.",
            ),
            ch.latency_chart(data, _slo_targets(data.summary)),
            ch.band_chart(
                data,
                "replicas",
                name="replicas",
                title="Replicas over time",
                ylabel="replicas (mean in window)",
                caption="GPU fleets only: billed, warm or starting replicas.",
                kinds=ch.GPU_KINDS,
            ),
            ch.band_chart(
                data,
                "gpu_util",
                name="gpu_util",
                title="GPU utilisation",
                ylabel="busy fraction of billed GPUs",
                caption="GPU fleets only.",
                kinds=ch.GPU_KINDS,
            ),
        ]
    if data.breakeven is not None and not data.breakeven.is_empty():
        found.append(ch.breakeven_chart(data.breakeven, data.crossovers))
    if data.replay is not None and not data.replay.is_empty():
        found.append(ch.replay_chart(data.replay))
    if data.sweep is not None and not data.sweep.is_empty():
        found.append(ch.sweep_chart(data.sweep, sweep_keys(data.sweep)))
    if data.prices:
        histories = _price_histories(data, warehouse, notes)
        as_of = (data.summary or data.resolved or {}).get("price_as_of")
        found.append(ch.price_history_chart(histories, as_of))
    return [c for c in found if c is not None]


def sweep_keys(df: pl.DataFrame) -> list[str]:
    """The swept scenario keys: sweep.parquet's dotted column names (figures never have dots)."""
    return [c for c in df.columns if "." in c]


def _slo_targets(summary: dict | None) -> dict[str, float]:
    slo = (summary or {}).get("slo") or {}
    targets = slo.get("targets_s", slo) if isinstance(slo, dict) else {}
    return {
        k: float(v) for k, v in targets.items() if isinstance(v, int | float) and k.endswith("_s")
    }


def _open_warehouse(warehouse, notes: list[str]):
    if warehouse is not None and not isinstance(warehouse, str | Path):
        return warehouse
    try:
        from warehouse.db import Warehouse

        path = Path(warehouse) if warehouse is not None else Warehouse.default_path()
        # Opening a missing file would create and fill a new warehouse: a report must not do that.
        if not path.exists():
            notes.append(f"Price history omitted: no warehouse at {path}.")
            return None
        return Warehouse(path, read_only=True)
    except Exception as exc:  # any failure to open only costs this one chart
        notes.append(
            f"Price history omitted: the warehouse could not be opened read-only ({type(exc).__name__}: {exc})."
        )
        return None


def _price_histories(data: RunData, warehouse, notes: list[str]) -> list[tuple[str, pl.DataFrame]]:
    priced = {
        fleet: prov
        for fleet, prov in data.prices.items()
        if prov.get("source") not in (None, "scenario")
        and (prov.get("sku") or prov.get("gpu_model"))
    }
    if not priced:
        notes.append(
            "Price history omitted: every price was set in the scenario, none came from the warehouse."
        )
        return []
    wh = _open_warehouse(warehouse, notes)
    if wh is None:
        return []
    try:
        return _histories(wh, priced, notes)
    finally:
        if wh is not warehouse:  # opened here from a path: ours to close
            wh.close()


def _histories(wh, priced: dict[str, dict], notes: list[str]) -> list[tuple[str, pl.DataFrame]]:
    out = []
    for fleet, prov in priced.items():
        sku = str(prov.get("sku") or prov.get("gpu_model"))
        provider = prov.get("provider")
        try:
            frame = wh.price_history(sku, provider=provider)
        except Exception as exc:  # one SKU's missing history must not sink the report
            notes.append(f"Price history of {fleet} ({sku}) unavailable: {exc}.")
            continue
        for column in ("region", "term"):
            wanted = prov.get(column)
            if wanted and frame is not None and column in frame.columns:
                frame = frame.filter(pl.col(column) == wanted)
        if (
            frame is None
            or frame.is_empty()
            or not {"valid_from", "price", "unit"} <= set(frame.columns)
        ):
            notes.append(f"No price history for {fleet} ({provider or ''} {sku}) in the warehouse.")
            continue
        frame = frame.select(
            pl.col("valid_from").cast(pl.Datetime("us")),
            (pl.col("valid_to") if "valid_to" in frame.columns else pl.lit(None))
            .cast(pl.Datetime("us"))
            .alias("valid_to"),
            pl.col("price").cast(pl.Float64),
            pl.col("unit").cast(pl.String),
            (pl.col("source") if "source" in frame.columns else pl.lit(""))
            .cast(pl.String)
            .alias("source"),
        )
        label = " ".join(
            str(p) for p in (fleet + ":", provider, sku, prov.get("region"), prov.get("term")) if p
        )
        out.append((label, frame))
    return out


# ---------------------------------------------------------------------------------------------
# HTML


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_usd(value) -> str:
    if not ch.finite(value):
        return "–"
    value = float(value)
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.3g}"


def fmt_s(value) -> str:
    if not ch.finite(value):
        return "–"
    value = float(value)
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.3g} s"


def fmt_num(value) -> str:
    if not ch.finite(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _table(headers: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    """rows: cells as (already-escaped html, is_number)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if num else f"<td>{c}</td>" for c, num in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _with_ci(stat, fmt) -> str:
    if not isinstance(stat, dict):
        return _e(fmt(None))
    text = _e(fmt(stat.get("mean")))
    ci = stat.get("ci95")
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(ch.finite(v) for v in ci):
        text += f' <span class="ci">[{_e(fmt(ci[0]))}, {_e(fmt(ci[1]))}]</span>'
    return text


LATENCY_METRICS = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E"))


def _slo_section(summary: dict) -> list[str]:
    """Each SLO target against each fleet's measured percentile, so a miss says which target."""
    slo = summary.get("slo") or {}
    targets = _slo_targets(summary)
    if not targets:
        return []
    fleets = summary.get("fleets", [])
    headers = ["fleet"]
    for key, target in targets.items():
        metric, _, pct = key.removesuffix("_s").rpartition("_")
        headers.append(f"{metric.upper()} {pct} ≤ {fmt_s(target)}")
    min_success = slo.get("min_success_rate")
    if isinstance(min_success, int | float):
        headers.append(f"success ≥ {100 * min_success:g}%")
    headers.append("meets SLO")
    rows = []
    for f in fleets:
        row = [(_e(f.get("name")), False)]
        for key, target in targets.items():
            metric, _, pct = key.removesuffix("_s").rpartition("_")
            value = ((f.get(f"{metric}_s") or {}).get(pct) or {}).get("mean")
            mark = "" if not ch.finite(value) else (" ✓" if value <= target else " ✗ over")
            row.append((_e(fmt_s(value) + mark), True))
        if isinstance(min_success, int | float):
            rate = (f.get("success_rate") or {}).get("mean")
            row.append((_e("–" if not ch.finite(rate) else f"{100 * rate:.2f}%"), True))
        row.append((_e("yes" if f.get("meets_slo") else "no"), False))
        rows.append(row)
    return ["<h2>SLO</h2>", _table(headers, rows)]


def _summary_sections(summary: dict) -> list[str]:
    fleets = summary.get("fleets", [])
    cheapest = summary.get("cheapest_meeting_slo")
    parts = []
    if cheapest:
        parts.append(
            f'<p class="verdict">Cheapest fleet meeting the SLO: <strong>{_e(cheapest)}</strong></p>'
        )
    else:
        parts.append('<p class="verdict none">No fleet meets the SLO.</p>')
    reps = summary.get("replications")
    parts.append(
        f'<h2>Cost</h2><p class="notes">Means over {_e(reps)} replications, 95% confidence intervals in brackets.</p>'
    )
    parts.append(
        _table(
            [
                "fleet",
                "kind",
                "total cost",
                "USD / Mtok output",
                "USD / 1k requests",
                "SLO attainment",
                "meets SLO",
            ],
            [
                [
                    (_e(f.get("name")), False),
                    (_e(f.get("kind")), False),
                    (_with_ci(f.get("total_cost_usd"), fmt_usd), True),
                    (_with_ci(f.get("usd_per_mtok_output"), fmt_usd), True),
                    (_with_ci(f.get("usd_per_1k_requests"), fmt_usd), True),
                    (
                        _with_ci(
                            f.get("slo_attainment"),
                            lambda v: "–" if not ch.finite(v) else f"{100 * float(v):.2f}%",
                        ),
                        True,
                    ),
                    (_e("yes" if f.get("meets_slo") else "no"), False),
                ]
                for f in fleets
            ],
        )
    )
    parts += _slo_section(summary)
    parts.append("<h2>Latency</h2>")
    metrics = [(key, label) for key, label in LATENCY_METRICS if any(f.get(key) for f in fleets)]
    headers = ["fleet"] + [
        f"{label} {pct}" for _, label in metrics for pct in ("p50", "p90", "p99")
    ]
    latency_rows = [
        [(_e(f.get("name")), False)]
        + [
            (_with_ci((f.get(key) or {}).get(pct), fmt_s), True)
            for key, _ in metrics
            for pct in ("p50", "p90", "p99")
        ]
        for f in fleets
    ]
    parts.append(_table(headers, latency_rows))
    parts.append("<h2>Requests</h2>")
    keys = ("arrivals", "ok", "failed", "dropped", "unfinished")
    parts.append(
        _table(
            ["fleet", *keys],
            [
                [(_e(f.get("name")), False)]
                + [(_e(fmt_num((f.get("requests") or {}).get(k))), True) for k in keys]
                for f in fleets
            ],
        )
    )
    breakdown_keys = list(
        dict.fromkeys(k for f in fleets for k in (f.get("cost_breakdown_usd") or {}))
    )
    if breakdown_keys:
        parts.append("<h2>Cost breakdown</h2>")
        parts.append(
            _table(
                ["fleet", *breakdown_keys],
                [
                    [(_e(f.get("name")), False)]
                    + [
                        (_e(fmt_usd((f.get("cost_breakdown_usd") or {}).get(k))), True)
                        for k in breakdown_keys
                    ]
                    for f in fleets
                ],
            )
        )
    return parts


def _prices_section(prices: dict[str, dict]) -> str:
    rows = []
    for fleet, prov in prices.items():
        shown = {k: v for k, v in prov.items() if not isinstance(v, dict)}
        detail = ", ".join(
            f"{k} = {v if not isinstance(v, float) else f'{v:.6g}'}"
            for k, v in shown.items()
            if k not in ("provider", "sku", "region", "term", "source", "valid_from")
            and v is not None
        )
        rows.append(
            [(_e(fleet), False)]
            + [
                (_e(shown.get(k)), False)
                for k in ("source", "provider", "sku", "region", "term", "valid_from")
            ]
            + [(_e(detail), False)]
        )
    return "<h2>Prices used</h2>" + _table(
        ["fleet", "source", "provider", "sku", "region", "term", "valid from", "figures"], rows
    )


def _frame_table(df: pl.DataFrame, columns: list[str]) -> str:
    columns = [c for c in columns if c in df.columns]
    rows = []
    for record in df.select(columns).to_dicts():
        row = []
        for c in columns:
            v = record[c]
            if isinstance(v, bool) or v is None:
                row.append((_e("yes" if v else ("–" if v is None else "no")), False))
            elif isinstance(v, int | float):
                cell = fmt_usd(v) if "usd" in c else fmt_s(v) if c.endswith("_s") else fmt_num(v)
                row.append((_e(cell), True))
            else:
                row.append((_e(v), False))
        rows.append(row)
    return _table(columns, rows)


def _analysis_sections(data: RunData) -> list[str]:
    parts = []
    if data.breakeven is not None and not data.breakeven.is_empty():
        parts.append("<h2>Break-even</h2>")
        if data.crossovers:
            items = "".join(f"<li>{_e(describe_crossover(c))}</li>" for c in data.crossovers)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(
                "<p>The cheapest fleet meeting the SLO is the same at every scale swept.</p>"
            )
        parts.append(
            _frame_table(
                data.breakeven,
                [
                    "scale",
                    "fleet",
                    "kind",
                    "total_cost_usd",
                    "usd_per_1k_requests",
                    "ttft_p99_s",
                    "e2e_p99_s",
                    "meets_slo",
                    "cheapest",
                ],
            )
        )
    if data.replay is not None and not data.replay.is_empty():
        parts.append("<h2>Price-date replay</h2>")
        parts.append(
            _frame_table(
                data.replay,
                [
                    "as_of",
                    "fleet",
                    "kind",
                    "total_cost_usd",
                    "usd_per_1k_requests",
                    "meets_slo",
                    "cheapest",
                ],
            )
        )
    if data.sweep is not None and not data.sweep.is_empty():
        parts.append("<h2>Sweep</h2>")
        figures = [
            "total_cost_usd",
            "usd_per_1k_requests",
            "ttft_p99_s",
            "e2e_p99_s",
            "meets_slo",
            "cheapest",
        ]
        keys = sweep_keys(data.sweep)
        parts.append(_frame_table(data.sweep, ["point", *keys, "fleet", "kind", *figures]))
    return parts


def _page(data: RunData, rendered: list[tuple[ch.Chart, str]], notes: list[str]) -> str:
    head_doc = data.summary or data.resolved or {}
    name = head_doc.get("scenario") or head_doc.get("name") or data.run_dir.name
    facts = []
    for label, key in (
        ("seed", "seed"),
        ("replications", "replications"),
        ("prices as of", "price_as_of"),
    ):
        if head_doc.get(key) is not None:
            facts.append(f"{_e(label)}: <strong>{_e(head_doc.get(key))}</strong>")
    body = [
        f"<h1>infercost report: {_e(name)}</h1>",
        f"<p>{' · '.join(facts)}</p>" if facts else "",
    ]
    if data.analysis:
        options = ", ".join(
            f"{k} = {v}"
            for k, v in sorted(data.analysis.get("options", {}).items())
            if v not in (None, (), [])
        )
        body.append(
            f"<p>sim {_e(data.analysis.get('analysis'))} of <code>{_e(data.analysis.get('scenario_file'))}</code>"
            f" at {_e(data.analysis.get('started_at'))}{': ' + _e(options) if options else ''}</p>"
        )
    if data.resolved and data.resolved.get("description"):
        body.append(f"<p>{_e(data.resolved['description'])}</p>")
    if data.summary:
        body += _summary_sections(data.summary)
    if data.prices:
        body.append(_prices_section(data.prices))
    body += _analysis_sections(data)
    if rendered:
        body.append("<h2>Charts</h2>")
    for chart, svg in rendered:
        body.append(
            f'<figure class="chart" id="chart-{_e(chart.name)}" data-chart="{_e(chart.name)}">'
            f"<h3>{_e(chart.title)}</h3>{svg}<figcaption>{_e(chart.caption)} "
            f"PNG: charts/{_e(chart.name)}.png</figcaption></figure>"
        )
    if notes:
        body.append(
            '<h2>Notes</h2><ul class="notes">'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul>"
        )
    if data.resolved:
        resolved = json.dumps(data.resolved, indent=2, sort_keys=True, default=str)
        body.append(
            f"<h2>Resolved scenario</h2><details><summary>scenario.resolved.json</summary><pre>{_e(resolved)}</pre></details>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>infercost: {_e(name)}</title><style>{CSS}</style><script>{HEAD_SCRIPT}</script></head>"
        f"<body>{''.join(body)}<script>{TAIL_SCRIPT}</script></body></html>\n"
    )
