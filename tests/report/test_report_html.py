"""The HTML report: self-contained, every chart present, escaped, deterministic."""

from __future__ import annotations

import json
import re
from datetime import datetime

import polars as pl
import pytest

from sim.analysis.breakeven import write_breakeven
from sim.errors import InputError
from sim.report.html import write_report
from sim.report.rundir import load_run
from sim.report.synthetic import write_synthetic_run

RUN_CHARTS = {"cost", "cumulative_cost", "latency", "replicas", "events", "busy_fraction"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tmp_path):
    return write_synthetic_run(tmp_path / "run", replications=4, windows=12, seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(run dir, report text) written once for the tests that only read the page.

    Module fixtures run before the suite's per-test warehouse isolation, so the warehouse is named
    explicitly (absent) rather than left to the default, which could be the user's.
    """
    run = write_synthetic_run(
        tmp_path_factory.mktemp("shared") / "run", replications=4, windows=12, seed=7
    )
    return run, write_report(run, warehouse=run / "absent.duckdb").read_text()


def charts_in(page: str) -> set[str]:
    return set(re.findall(r'<figure class="chart" id="chart-[^"]*" data-chart="([^"]+)"', page))


def test_report_has_every_run_chart_inline_and_as_png(written):
    run_dir, page = written
    assert charts_in(page) == RUN_CHARTS
    assert page.count("<svg") == len(RUN_CHARTS)
    for name in RUN_CHARTS:
        assert (run_dir / "charts" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    assert "Cheapest fleet meeting the SLO: <strong>openai-api</strong>" in page


def test_report_loads_nothing_from_outside(written):
    _, page = written
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(
        r"<link\b|<script[^>]*\bsrc=|@import|url\(\s*['\"]?(https?:)?//", page, re.IGNORECASE
    )
    assert "default-src 'none'" in page  # the browser itself refuses any load the page might try


def test_report_escapes_user_text(tmp_path):
    run = write_synthetic_run(
        tmp_path / "run", fleets=(("<img src=x onerror=alert(1)>", "api"),), replications=2, windows=4,
        name="<script>alert('x')</script>",
    )  # fmt: skip
    page = write_report(run).read_text()
    assert "<script>alert(" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_report_is_byte_identical_when_regenerated(written):
    run_dir, first = written
    assert write_report(run_dir, warehouse=run_dir / "absent.duckdb").read_text() == first


def test_svg_ids_are_unique_across_charts(written):
    _, page = written
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_bands_fall_back_to_timeseries_when_bands_file_lacks_a_metric(run_dir):
    from_file = load_run(run_dir).band("cost_usd")
    (run_dir / "bands.parquet").unlink()
    computed = load_run(run_dir).band("cost_usd")
    joined = from_file.join(computed, on=["fleet", "window_start_s"], suffix="_c")
    assert joined.height == from_file.height == 3 * 12
    for col in ("mean", "p5", "p50", "p95"):
        assert (joined[col] - joined[f"{col}_c"]).abs().max() < 1e-9


def test_windows_without_completions_do_not_count_as_values(tmp_path):
    run = write_synthetic_run(tmp_path / "run", fleets=(("f", "cloud"),), replications=3, windows=2)
    ts = pl.read_parquet(run / "timeseries.parquet")
    # Replication 0 had no completion in window 0 (NaN); the mean is over the other two.
    ts = ts.with_columns(
        pl.when((pl.col("replication") == 0) & (pl.col("window_start_s") == 0))
        .then(float("nan"))
        .otherwise(pl.col("ttft_p99_s"))
        .alias("ttft_p99_s")
    )
    ts.write_parquet(run / "timeseries.parquet")
    (run / "bands.parquet").unlink()
    band = load_run(run).band("ttft_p99_s").filter(pl.col("window_start_s") == 0)
    expected = ts.filter((pl.col("window_start_s") == 0) & (pl.col("replication") > 0))[
        "ttft_p99_s"
    ].mean()
    assert band["mean"][0] == pytest.approx(expected)


def test_breakeven_and_price_history_charts_when_data_is_there(run_dir):
    breakeven = pl.DataFrame(
        {
            "scale": [1.0, 1.0, 4.0, 4.0],
            "fleet": ["api", "own", "api", "own"],
            "kind": ["api", "self_hosted"] * 2,
            "total_cost_usd": [10.0, 20.0, 40.0, 20.0],
            "usd_per_1k_requests": [2.0, 4.0, 2.0, 1.0],
            "meets_slo": [True, True, True, False],
            "cheapest": [True, False, True, False],
        }
    )
    write_breakeven(
        run_dir,
        breakeven,
        [
            {
                "scale": 2.0,
                "scale_lo": 1.0,
                "scale_hi": 4.0,
                "from_fleet": "api",
                "to_fleet": "own",
                "reason": "cost",
            }
        ],
    )

    class FakeWarehouse:
        def price_history(self, sku, provider=None):
            return pl.DataFrame(
                {
                    "valid_from": [datetime(2025, 1, 1), datetime(2025, 6, 1)],
                    "price": [0.6, 0.4],
                    "unit": ["usd_per_mtok_output"] * 2,
                    "region": [""] * 2,
                    "term": ["on_demand"] * 2,
                }
            )

    page = write_report(run_dir, warehouse=FakeWarehouse()).read_text()
    assert charts_in(page) == RUN_CHARTS | {"breakeven", "price_history"}
    assert "the cheapest fleet meeting the SLO goes from api to own between 1x and 4x" in page


def test_missing_warehouse_is_a_note_not_an_error(tmp_path, monkeypatch):
    run = write_synthetic_run(tmp_path / "run", fleets=(("f", "api"),), replications=2, windows=3)
    page = write_report(run, warehouse=tmp_path / "absent.duckdb").read_text()
    assert f"Price history omitted: no warehouse at {tmp_path / 'absent.duckdb'}" in page
    assert not (tmp_path / "absent.duckdb").exists()  # a report never creates a warehouse
    monkeypatch.setenv("INFERCOST_DB", str(tmp_path / "default.duckdb"))
    page = write_report(run).read_text()  # no warehouse given: the default one, if it exists
    assert f"Price history omitted: no warehouse at {tmp_path / 'default.duckdb'}" in page
    assert not (tmp_path / "default.duckdb").exists()


def test_directory_with_nothing_to_report_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="nothing to report"):
        write_report(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match="summary.json: not valid JSON"):
        write_report(tmp_path)


def test_summary_table_shows_cost_with_its_interval(written):
    run_dir, page = written
    summary = json.loads((run_dir / "summary.json").read_text())
    cost = summary["fleets"][1]["total_cost_usd"]
    assert (
        f'${cost["mean"]:,.2f} <span class="ci">[${cost["ci95"][0]:,.2f}, ${cost["ci95"][1]:,.2f}]</span>'
        in page
    )


def test_slo_table_names_the_target_a_fleet_misses(tmp_path):
    run = write_synthetic_run(
        tmp_path / "run", replications=2, windows=3, meets_slo={"own-h100": False}
    )
    summary = json.loads((run / "summary.json").read_text())
    summary["fleets"][2]["e2e_s"]["p99"]["mean"] = 45.0  # synthetic target: e2e_p99_s <= 30
    (run / "summary.json").write_text(json.dumps(summary))
    page = write_report(run, warehouse=tmp_path / "absent.duckdb").read_text()
    slo_table = page[page.index("<h2>SLO</h2>") : page.index("<h2>Latency</h2>")]
    assert "<th>TTFT p99 ≤ 2 s</th><th>E2E p99 ≤ 30 s</th><th>success ≥ 99%</th>" in slo_table
    assert '<tr><td>own-h100</td><td class="n">' in slo_table
    own_row = slo_table[slo_table.index("<td>own-h100</td>") :].split("</tr>")[0]
    assert '<td class="n">45 s ✗ over</td>' in own_row and "<td>no</td>" in own_row


def test_verdict_lines_say_why_each_fleet_lost(tmp_path):
    run = write_synthetic_run(tmp_path / "run", replications=2, windows=3)
    summary = json.loads((run / "summary.json").read_text())
    summary["fleets"][2]["e2e_s"]["p99"]["mean"] = 45.0  # over the synthetic 30 s target
    summary["fleets"][2]["meets_slo"] = False
    summary["fleets"][1]["slo_windows"] = {"missed": 2.0, "judged": 3.0, "windows": 3.0}
    (run / "summary.json").write_text(json.dumps(summary))
    page = write_report(run, warehouse=tmp_path / "absent.duckdb").read_text()
    reasons = page[page.index('<ul class="reasons">') : page.index("</ul>")]
    own = reasons[reasons.index("<strong>own-h100</strong>") :].split("</li>")[0]
    assert "misses E2E p99 45 s &gt; 30 s" in own
    cloud = reasons[reasons.index("<strong>cloud-h100</strong>") :].split("</li>")[0]
    assert "SLO missed in 2 of 3 windows" in cloud
    assert reasons.index('class="best"') < reasons.index("cloud-h100")  # the winner first


def test_utilisation_and_events_tables(written):
    _, page = written
    util = page[page.index("<h2>Utilisation</h2>") : page.index("<h2>Events</h2>")]
    assert "<td>cloud-h100</td>" in util and "openai-api" not in util  # GPU fleets only
    assert '<td class="n">60.00%</td><td class="n">20.00%</td><td class="n">10.00%</td>' in util
    events = page[page.index("<h2>Events</h2>") :].split("</table>")[0]
    assert "<th>openai-api</th><th>cloud-h100</th><th>own-h100</th>" in events
    scale_up = events[events.index("<td>scale_up</td>") :].split("</tr>")[0]
    assert scale_up.count("–") == 2  # API and self-hosted fleets cannot scale
