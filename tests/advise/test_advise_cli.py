"""`sim advise` from the command line: JSON output, run directory, warehouse record, bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest
from advise_market import OBSERVED, SCENARIO, market_records
from click.testing import CliRunner

from sim.advise.constraints import AdviseConstraints, parse_constraints
from sim.cli import cli
from sim.errors import InputError
from warehouse import Warehouse


@pytest.fixture
def market_db(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERCOST_NO_SNAPSHOT", "1")
    path = tmp_path / "market.duckdb"
    with Warehouse(path) as wh:
        for source, records in market_records().items():
            wh.ingest_run(source, records, started_at=OBSERVED, observed_at=OBSERVED)
    return path


def test_advise_json_run_dir_and_record(tmp_path, market_db, question):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(market_db),
            "advise",
            str(question),
            "--json",
            "--top",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["kinds"] == ["api", "cloud", "mix", "self_hosted"]
    top = payload["candidates"][0]
    assert top["rank"] == 1 and top["simulated"] and top["meets_slo"]
    for key in ("cost_usd_total", "cost_usd_per_month", "usd_per_mtok_input", "why_not"):
        assert key in top
    table = pl.read_parquet(out / "advice.parquet")
    assert len(table) == payload["screened"]
    assert (out / "advice.html").read_text().count("data:image/png;base64,") == 1
    with Warehouse(market_db, read_only=True) as wh:
        stored = wh.query(
            "SELECT count(*) AS n FROM sim_summaries WHERE run_id = ?", [payload["recorded_run_id"]]
        )
    assert stored["n"][0] > 0


def test_unknown_advise_key_is_one_line_exit_2(tmp_path, market_db):
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO + "\n[advise]\nmax_gpu = 8\n")
    result = CliRunner().invoke(cli, ["--db", str(market_db), "advise", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "advise.max_gpu" in lines[0] and "unknown key" in lines[0]


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"max_gpus": 0}, "advise.max_gpus"),
        ({"shortlist": 1000}, "advise.shortlist"),
        ({"precisions": ["fp7"]}, "advise.precisions[0]"),
        ({"purchase": "no"}, "advise.purchase"),
        ({"budget_usd_per_month": -5}, "advise.budget_usd_per_month"),
        ({"kinds": ["gpu"]}, "advise.kinds[0]"),
    ],
)
def test_constraint_bounds(table, field):
    with pytest.raises(InputError) as err:
        parse_constraints(table, "q.toml")
    assert err.value.field == field and err.value.source == "q.toml"


def test_constraint_globs():
    c = parse_constraints({"regions": ["us-*"], "terms": "reserved_*"}, "q.toml")
    assert c.allows_region("us-east-1") and not c.allows_region("eu-west-1")
    assert c.allows_term("reserved_3y_all_upfront") and not c.allows_term("on_demand")
    assert AdviseConstraints().allows_provider("anything")


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["advise", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
