"""`report.html`: one self-contained page (inline SVG charts, inline CSS, no network) per run
directory, plus `charts/*.png`, rendered from jinja2 templates (sim/report/templates, autoescaped).
Written after every `sim run`; `sim report RUN_DIR` redoes it. The report renders what the run
directory holds; it computes no analysis.
"""

from __future__ import annotations

import json
from dataclasses import fields
from functools import cache
from pathlib import Path

import jinja2
import polars as pl
from markupsafe import Markup

from sim.report import charts as ch
from sim.report.rundir import RunData, load_run
from sim.summary import RunSummary, Stat, slo_failures

# The page may load nothing from anywhere: a chart that tried would be blocked and show up as an
# error in the self-check (report_tail.js), instead of silently phoning home when opened.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def write_report(run_dir: Path, *, db_path: str | Path | None = None, warehouse=None) -> Path:
    """Write `report.html` and `charts/*.png` into `run_dir`; return the HTML path.

    Price history comes from `warehouse` (an open `warehouse.Warehouse`), else from the DuckDB file
    `db_path`, else from the warehouse the run itself used (recorded in scenario.resolved.json),
    else the default one; when none can be opened read-only the chart is left out with a note.
    """
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    notes: list[str] = []
    source = warehouse if warehouse is not None else db_path
    if source is None and data.resolved and data.resolved.get("warehouse"):
        source = Path(data.resolved["warehouse"])
    flat: list[tuple[str, pl.DataFrame]] = []  # price histories that never moved: a table
    charts = _charts(data, source, notes, flat)
    rendered = [(c, ch.render(c, run_dir / "charts")) for c in charts]
    page = _template().render(**_context(data, rendered, notes, flat))
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _charts(data: RunData, warehouse, notes: list[str], flat: list) -> list[ch.Chart]:
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
            ch.latency_chart(data, data.summary.slo.targets_s if data.summary else {}),
            ch.band_chart(
                data,
                "replicas",
                name="replicas",
                title="Replicas over time",
                ylabel="replicas (mean in window)",
                caption="GPU fleets only: billed, warm or starting replicas.",
                kinds=ch.GPU_KINDS,
            ),
            ch.events_chart(data, _window_flags(data.summary)),
            ch.band_chart(
                data,
                "busy_fraction",
                name="busy_fraction",
                title="GPU busy fraction",
                ylabel="busy fraction of billed GPUs",
                caption="GPU fleets only: the share of billed GPU time in which an engine step "
                "runs. Not how full the batch is: see the Utilisation table.",
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
        flat += [h for h in histories if _flat(h[1])]
        histories = [h for h in histories if not _flat(h[1])]
        as_of = (
            data.summary.price_as_of if data.summary else (data.resolved or {}).get("price_as_of")
        )
        found.append(ch.price_history_chart(histories, as_of))
    return [c for c in found if c is not None]


def _window_flags(summary: RunSummary | None) -> dict[str, str]:
    """Per fleet, e.g. "SLO missed in 7 of 60 windows", where any window missed."""
    if summary is None:
        return {}
    return {
        f.name: f.slo_windows.text()
        for f in summary.fleets
        if f.slo_windows is not None and f.slo_windows.missed > 0
    }


def _flat(frame: pl.DataFrame) -> bool:
    """True when no price in the history ever moved (one value per unit and source)."""
    counts = frame.group_by(["unit", "source"]).agg(pl.col("price").n_unique().alias("k"))
    return bool((counts["k"] <= 1).all())


def sweep_keys(df: pl.DataFrame) -> list[str]:
    """The swept scenario keys: sweep.parquet's dotted column names (figures never have dots)."""
    return [c for c in df.columns if "." in c]


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


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sim.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=fmt_usd, seconds=fmt_s, num=fmt_num, pct=fmt_pct, stat=_with_ci)
    env.globals.update(usd=fmt_usd, seconds=fmt_s, num=fmt_num, pct=fmt_pct)
    return env.get_template("report.html.j2")


def _asset(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


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


def fmt_pct(value) -> str:
    return "–" if not ch.finite(value) else f"{100 * float(value):.2f}%"


def fmt_num(value) -> str:
    if not ch.finite(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _with_ci(stat: Stat | None, fmt) -> Markup:
    """`mean <span class="ci">[lo, hi]</span>`, every value escaped."""
    if stat is None:
        return Markup.escape(fmt(None))
    text = Markup.escape(fmt(stat.mean))
    if stat.ci95 is not None and all(ch.finite(v) for v in stat.ci95):
        text += Markup(' <span class="ci">[{}, {}]</span>').format(
            fmt(stat.ci95[0]), fmt(stat.ci95[1])
        )
    return text


LATENCY_COLUMNS = tuple((label, q) for label in ("TTFT", "TPOT", "E2E") for q in ("p50", "p90", "p99"))  # fmt: skip
REQUEST_KEYS = ("arrivals", "ok", "failed", "dropped", "unfinished")


def _slo_table(summary: RunSummary) -> tuple[list[str], list[dict]]:
    """Each SLO target against each fleet's measured percentile, so a miss says which target."""
    targets = summary.slo.targets_s
    if not targets:
        return [], []
    headers = []
    for key, target in targets.items():
        metric, q, _ = key.split("_")
        headers.append(f"{metric.upper()} {q} ≤ {fmt_s(target)}")
    headers.append(f"success ≥ {100 * summary.slo.min_success_rate:g}%")
    rows = []
    for f in summary.fleets:
        cells = []
        for key, target in targets.items():
            metric, q, _ = key.split("_")
            value = f.latency(metric, q)
            mark = "" if value is None else (" ✓" if value <= target else " ✗ over")
            cells.append(fmt_s(value) + mark)
        rate = f.success_rate.mean
        cells.append("–" if rate is None else f"{100 * rate:.2f}%")
        rows.append({"name": f.name, "cells": cells, "meets": f.meets_slo})
    return headers, rows


def _price_rows(prices: dict[str, dict]) -> list[dict]:
    rows = []
    for fleet, prov in prices.items():
        shown = {k: v for k, v in prov.items() if not isinstance(v, dict | list)}
        detail = ", ".join(
            f"{k} = {v if not isinstance(v, float) else f'{v:.6g}'}"
            for k, v in shown.items()
            if k not in ("provider", "sku", "region", "term", "source", "valid_from", "note_when")
            and v is not None
        )
        cells = [
            shown.get(k) for k in ("source", "provider", "sku", "region", "term", "valid_from")
        ]
        rows.append({"fleet": fleet, "cells": cells, "detail": detail})
    return rows


def _frame_section(title: str, df: pl.DataFrame, columns: list[str], **extra) -> dict:
    columns = [c for c in columns if c in df.columns]
    rows = []
    for record in df.select(columns).to_dicts():
        row = []
        for c in columns:
            v = record[c]
            if isinstance(v, bool) or v is None:
                row.append(("yes" if v else ("–" if v is None else "no"), False))
            elif isinstance(v, int | float):
                cell = fmt_usd(v) if "usd" in c else fmt_s(v) if c.endswith("_s") else fmt_num(v)
                row.append((cell, True))
            else:
                row.append((str(v), False))
        rows.append(row)
    return {
        "title": title,
        "columns": columns,
        "rows": rows,
        "intro": [],
        "empty_note": None,
        **extra,
    }


VERDICT_COLUMNS = [
    "fleet", "kind", "total_cost_usd", "usd_per_1k_requests", "ttft_p99_s", "tpot_p99_s",
    "success_rate", "meets_slo", "slo_failed", "cheapest",
]  # fmt: skip


def _analysis_tables(data: RunData) -> list[dict]:
    sections = []
    if data.breakeven is not None and not data.breakeven.is_empty():
        intro = [str(c.get("description", "")) for c in data.crossovers]
        empty = None if intro else "The cheapest fleet meeting the SLO is the same at every scale swept."  # fmt: skip
        sections.append(
            _frame_section(
                "Break-even",
                data.breakeven,
                ["scale", *VERDICT_COLUMNS],
                intro=intro,
                empty_note=empty,
            )  # fmt: skip
        )
    if data.replay is not None and not data.replay.is_empty():
        sections.append(_frame_section("Price-date replay", data.replay, ["as_of", *VERDICT_COLUMNS]))  # fmt: skip
    if data.sweep is not None and not data.sweep.is_empty():
        keys = sweep_keys(data.sweep)
        sections.append(_frame_section("Sweep", data.sweep, ["point", *keys, *VERDICT_COLUMNS]))
    return sections


def _flat_price_rows(flat: list[tuple[str, pl.DataFrame]]) -> list[list[str]]:
    """One row per unit and source of a price that never moved: what it was and since when."""
    rows = []
    for label, frame in flat:
        first = frame.sort("valid_from").group_by(["unit", "source"], maintain_order=True).first()
        for r in first.to_dicts():
            since = r["valid_from"].date().isoformat() if r["valid_from"] else ""
            rows.append([label, r["unit"], f"{r['price']:.6g}", since, r["source"] or ""])
    return rows


def _verdict_lines(summary: RunSummary) -> list[dict]:
    """Why each fleet won or lost, in one line each, cheapest first: cost, and the SLO terms
    missed with the measured value against the target."""
    best = summary.cheapest_meeting_slo
    best_cost = summary.fleet(best).total_cost_usd.mean if best else None
    lines = []
    order = sorted(summary.fleets, key=lambda f: (f.total_cost_usd.mean is None, f.total_cost_usd.mean or 0))  # fmt: skip
    for f in order:
        cost = f.total_cost_usd.mean
        month = f.usd_per_month.mean
        parts = [fmt_usd(cost) + (f" ({fmt_usd(month)} a month)" if ch.finite(month) else "")]
        if f.meets_slo:
            parts.append("meets the SLO")
            if f.name != best and best_cost and cost is not None:
                parts.append(f"{cost / best_cost:.2g}x the cheapest")
        else:
            missed = []
            for term in slo_failures(f, summary.slo):
                if term == "success_rate":
                    missed.append(f"success {fmt_pct(f.success_rate.mean)} < {fmt_pct(summary.slo.min_success_rate)}")  # fmt: skip
                    continue
                metric, q, _ = term.split("_")
                missed.append(f"{metric.upper()} {q} {fmt_s(f.latency(metric, q))} > {fmt_s(summary.slo.targets_s[term])}")  # fmt: skip
            parts.append("misses " + ", ".join(missed) if missed else "does not meet the SLO")
        if f.slo_windows is not None and f.slo_windows.missed > 0:
            parts.append(f.slo_windows.text())
        lines.append({"name": f.name, "text": "; ".join(parts), "best": f.name == best, "meets": f.meets_slo})  # fmt: skip
    return lines


def _event_rows(summary: RunSummary) -> list[dict]:
    """The events table, one row per event (fleets as columns: it stays narrow); events no fleet
    of this run can have are left out."""
    from sim.summary.records import FleetEvents

    rows = []
    for field in fields(FleetEvents):
        values = [getattr(f.events, field.name) for f in summary.fleets]
        if all(v is None for v in values):
            continue
        fmt = fmt_s if field.name.endswith("_s_p99") else fmt_num
        rows.append({"name": field.name, "cells": [fmt(v) for v in values]})
    return rows


def _pool_rows(summary: RunSummary) -> list[dict]:
    """One row per pool of each disaggregated fleet, its KV link on the pool's first row."""
    rows = []
    for f in summary.fleets:
        for name, p in (f.pools or {}).items():
            link = f.kv_link
            transfers = (
                f"{link.transfers:,.0f} x {fmt_s(link.mean_transfer_s)} ({link.kind})"
                if link is not None and name == next(iter(f.pools))
                else ""
            )
            cells = [
                name,
                f"{p.gpu} tp{p.tp}",
                fmt_num(p.replicas_launched),
                fmt_pct(p.busy_fraction),
                fmt_usd(p.cost_usd.mean),
                transfers,
            ]
            rows.append({"name": f.name, "cells": cells})
    return rows


def _utilisation_rows(summary: RunSummary) -> list[dict]:
    rows = []
    for f in summary.fleets:
        u = f.utilisation
        if u is None:
            continue
        achieved, capacity = u.output_tokens_per_s, u.capacity_output_tokens_per_s
        share = achieved / capacity if achieved is not None and capacity else None
        cells = [
            fmt_pct(u.busy_fraction),
            fmt_pct(u.batch_occupancy),
            fmt_pct(u.kv_occupancy),
            fmt_num(achieved),
            fmt_num(capacity),
            fmt_pct(share),
        ]
        rows.append({"name": f.name, "cells": cells})
    return rows


def _cache_rows(summary: RunSummary) -> list[dict]:
    """Per fleet with a prompt cache that did something: GPU fleets' prefix-cache hit rates,
    evictions and prefill time saved; API fleets' tokens billed as cached input and writes."""
    rows = []
    for f in summary.fleets:
        p, a = f.prefix_cache, f.api_cache
        if p is not None and (p.prefix_hit_rate_tokens.mean or p.prefix_evictions.mean):
            cells = [
                fmt_pct(p.prefix_hit_rate_tokens.mean),
                fmt_pct(p.prefix_hit_rate_requests.mean),
                fmt_num(p.prefix_evictions.mean),
                fmt_num(p.prefix_gpu_s_saved.mean),
                "–",
                "–",
            ]
            rows.append({"name": f.name, "cells": cells})
        elif a is not None and (a.cached_input_tokens.mean or a.cache_write_tokens.mean):
            cells = ["–", "–", "–", "–", fmt_num(a.cached_input_tokens.mean)]
            cells.append(fmt_num(a.cache_write_tokens.mean))
            rows.append({"name": f.name, "cells": cells})
    return rows


def _context(
    data: RunData, rendered: list[tuple[ch.Chart, str]], notes: list[str], flat: list
) -> dict:
    summary = data.summary
    resolved = data.resolved or {}
    name = summary.scenario if summary else resolved.get("name") or data.run_dir.name
    facts = []
    if summary:
        facts = [("seed", summary.seed), ("replications", summary.replications), ("prices as of", summary.price_as_of)]  # fmt: skip
    else:
        facts = [(label, resolved[key]) for label, key in (("seed", "seed"), ("replications", "replications"), ("prices as of", "price_as_of")) if resolved.get(key) is not None]  # fmt: skip
    analysis = None
    if data.analysis:
        options = ", ".join(
            f"{k} = {v}"
            for k, v in sorted(data.analysis.get("options", {}).items())
            if v not in (None, (), [])
        )
        analysis = {
            "kind": data.analysis.get("analysis"),
            "scenario_file": data.analysis.get("scenario_file"),
            "started_at": data.analysis.get("started_at"),
            "options": options,
        }
    slo_headers, slo_rows = _slo_table(summary) if summary else ([], [])
    breakdown = list(dict.fromkeys(k for f in summary.fleets for k in f.cost_breakdown_usd)) if summary else []  # fmt: skip
    latency_columns = [
        (label, q)
        for label, q in LATENCY_COLUMNS
        if summary and any(f.latency_s.get(label.lower()) for f in summary.fleets)
    ]
    return {
        "csp": Markup(CSP),  # a constant of ours; quotes must stay quotes
        "css": _asset("report.css"),
        "head_js": _asset("report_head.js"),
        "tail_js": _asset("report_tail.js"),
        "name": name,
        "facts": facts,
        "analysis": analysis,
        "description": resolved.get("description"),
        "summary": summary,
        "failed": {f.name: slo_failures(f, summary.slo) for f in summary.fleets}
        if summary
        else {},  # fmt: skip
        "slo_headers": slo_headers,
        "slo_rows": slo_rows,
        "latency_columns": latency_columns,
        "request_keys": REQUEST_KEYS,
        "breakdown_keys": breakdown,
        "prices": _price_rows(data.prices) if data.prices else [],
        "flat_prices": _flat_price_rows(flat),
        "verdict_lines": _verdict_lines(summary) if summary else [],
        "event_rows": _event_rows(summary) if summary else [],
        "utilisation_rows": _utilisation_rows(summary) if summary else [],
        "pool_rows": _pool_rows(summary) if summary else [],
        "cache_rows": _cache_rows(summary) if summary else [],
        "tables": _analysis_tables(data),
        "charts": rendered,
        "notes": notes,
        "resolved_json": json.dumps(resolved, indent=2, sort_keys=True, default=str)
        if resolved
        else None,  # fmt: skip
    }
