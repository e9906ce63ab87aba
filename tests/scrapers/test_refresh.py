"""Refresh orchestration and the `sim prices refresh | reparse` commands, against a local server."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from scrapers import litellm
from scrapers.base import SkipSource
from scrapers.refresh import check_sources, refresh, reparse
from sim.cli import cli
from warehouse import Warehouse

OPENROUTER = "openrouter_models.json"
L153, L110, L114 = (f"litellm_model_prices_{v}.json" for v in ("1.53.1", "1.110.2", "1.14.4"))


def test_one_failing_source_never_stops_the_others(wh, serve, fast_http, fixture_bytes, prices_of):
    serve("litellm", "/litellm.json", "gone", status=404)
    serve("openrouter", "/models", fixture_bytes(OPENROUTER))
    results = refresh(wh, ["litellm", "openrouter"], http_factory=fast_http)
    assert [(r.source, r.status) for r in results] == [("litellm", "failed"), ("openrouter", "ok")]
    assert "HTTP 404" in results[0].error
    assert prices_of(wh, "openrouter")


def test_server_errors_are_retried_then_fail(wh, serve, fast_http, httpserver):
    serve("litellm", "/litellm.json", "down", status=503)
    (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
    assert result.status == "failed" and "HTTP 503 after 2 attempts" in result.error
    assert len([req for req, _ in httpserver.log if req.path == "/litellm.json"]) == 2


def test_a_parser_bug_is_a_failed_run_not_a_crash(wh, serve, fast_http, fixture_bytes, monkeypatch):
    serve("openrouter", "/models", fixture_bytes(OPENROUTER))

    def broken(raw, fetched_at):
        raise KeyError("pricing")

    monkeypatch.setattr("scrapers.openrouter.parse", broken)
    (result,) = refresh(wh, ["openrouter"], http_factory=fast_http)
    assert result.status == "failed"
    assert result.error == "openrouter: unexpected response shape: KeyError: 'pricing'"


def test_skip_source_is_recorded_as_skipped(wh, monkeypatch):
    def no_key(http):
        raise SkipSource("INFERCOST_GCP_API_KEY is not set")

    monkeypatch.setattr("scrapers.litellm.fetch", no_key)
    (result,) = refresh(wh, ["litellm"])
    assert result.status == "failed" and result.error == "skipped: INFERCOST_GCP_API_KEY is not set"


def test_shrink_guard_rejects_and_keeps_earlier_data(
    wh, serve, fast_http, fixture_bytes, prices_of
):
    serve("litellm", "/litellm.json", fixture_bytes(L110))
    assert refresh(wh, ["litellm"], http_factory=fast_http)[0].status == "ok"
    # 1.14.4 has 282 prices against 12992: below half, so the run is rejected.
    serve("litellm", "/litellm.json", fixture_bytes(L114))
    (result,) = refresh(wh, ["litellm"], http_factory=fast_http)
    assert result.status == "rejected" and "fewer than" in result.error
    p = prices_of(wh, "litellm")
    assert len(p) == 12992
    assert p[("gpt-3.5-turbo", "usd_per_mtok_input", 0, "on_demand")] == Decimal("0.5")


def test_reparse_uses_stored_captures(
    wh, serve, fast_http, fixture_bytes, fixture_json, monkeypatch, prices_of
):
    # A map whose provider key was renamed fails today's parser: nothing stored, raw kept.
    data = fixture_json(L153)
    for entry in data.values():
        if "litellm_provider" in entry:
            entry["provider_name"] = entry.pop("litellm_provider")
    serve("litellm", "/litellm.json", json.dumps(data))
    (failed,) = refresh(wh, ["litellm"], http_factory=fast_http)
    assert failed.status == "failed" and prices_of(wh, "litellm") == {}
    # "Fix" the parser to read the new key, then reparse the failed run's stored response.
    real_parse = litellm.parse

    def fixed(raw, fetched_at):
        bodies = [c.body.replace(b'"provider_name"', b'"litellm_provider"') for c in raw]
        return real_parse(b"".join(bodies), fetched_at)

    monkeypatch.setattr("scrapers.litellm.parse", fixed)
    result = reparse(wh, failed.run_id)
    assert result.status == "ok" and result.run_id > failed.run_id
    # 1.53.1 gpt-3.5-turbo input 1.5e-06.
    assert prices_of(wh, "litellm")[("gpt-3.5-turbo", "usd_per_mtok_input", 0, "on_demand")] == 1.5


def test_unknown_source_names_are_refused():
    with pytest.raises(ValueError, match="nope"):
        check_sources(["litellm", "nope"])
    assert check_sources(["modal", "litellm"]) == ["litellm", "modal"]  # registry order


# -- the CLI ------------------------------------------------------------------------------------


def _sim(db, *args):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def test_cli_exit_codes(tmp_path, serve, fixture_bytes):
    db = tmp_path / "w.duckdb"
    serve("openrouter", "/models", fixture_bytes(OPENROUTER))
    serve("modal", "/pricing", "gone", status=404)
    serve("litellm", "/litellm.json", "gone", status=404)
    ok = _sim(db, "prices", "refresh", "--source", "openrouter")
    assert ok.exit_code == 0, ok.output
    assert "openrouter: ok" in ok.output and "price refresh" in ok.output
    some = _sim(db, "prices", "refresh", "--source", "openrouter", "--source", "modal")
    assert some.exit_code == 1
    assert "modal: failed" in some.output and "HTTP 404" in some.output
    none = _sim(db, "prices", "refresh", "--source", "modal", "--source", "litellm")
    assert none.exit_code == 2
    bad = _sim(db, "prices", "refresh", "--source", "nope")
    assert bad.exit_code == 2 and "unknown source nope" in bad.output


def test_cli_end_to_end_periods_and_history(
    tmp_path, serve, fixture_bytes, fixture_json, monkeypatch
):
    # Start empty: the shipped snapshot already holds the 1.110.2 map, which would hide the change.
    monkeypatch.setenv("INFERCOST_NO_SNAPSHOT", "1")
    db = tmp_path / "w.duckdb"
    serve("openrouter", "/models", fixture_bytes(OPENROUTER))
    serve("litellm", "/litellm.json", fixture_bytes(L153))
    assert (
        _sim(db, "prices", "refresh", "--source", "openrouter", "--source", "litellm").exit_code
        == 0
    )
    count = _sim(
        db,
        "sql",
        "select count(*) as n from prices where source in ('openrouter', 'litellm')",
        "--format",
        "csv",
    )
    assert count.exit_code == 0
    # 19 OpenRouter prices + 1320 from the 1.53.1 map.
    assert count.output.split() == ["n", str(19 + 1320)]

    # One changed price: claude-opus-5 prompt 0.000005 -> 0.000006 adds exactly one period.
    data = fixture_json(OPENROUTER)
    data["data"][0]["pricing"]["prompt"] = "0.000006"
    serve("openrouter", "/models", json.dumps(data))
    periods = "select count(*) as n from price_history where source = 'openrouter'"
    before = _sim(db, "sql", periods, "--format", "csv").output.split()[1]
    assert _sim(db, "prices", "refresh", "--source", "openrouter").exit_code == 0
    after = _sim(db, "sql", periods, "--format", "csv").output.split()[1]
    assert int(after) == int(before) + 1

    # The real LiteLLM change: gpt-3.5-turbo input 1.5 (1.53.1) -> 0.5 (1.110.2) USD/Mtok.
    serve("litellm", "/litellm.json", fixture_bytes(L110))
    assert _sim(db, "prices", "refresh", "--source", "litellm").exit_code == 0
    hist = _sim(
        db,
        "sql",
        "select price from price_history where source = 'litellm' and sku = 'gpt-3.5-turbo' "
        "and unit = 'usd_per_mtok_input' and term = 'on_demand' order by valid_from",
        "--format",
        "csv",
    )
    assert [Decimal(x) for x in hist.output.split()[1:]] == [Decimal("1.5"), Decimal("0.5")]


def test_cli_reparse(tmp_path, serve, fixture_bytes):
    db = tmp_path / "w.duckdb"
    serve("openrouter", "/models", fixture_bytes(OPENROUTER))
    assert _sim(db, "prices", "refresh", "--source", "openrouter").exit_code == 0
    with Warehouse(db) as w:
        run_id = w.runs("openrouter")["run_id"][0]
    out = _sim(db, "prices", "reparse", str(run_id))
    assert out.exit_code == 0, out.output
    assert "ok" in out.output


def test_every_command_has_an_example():
    for name in ("refresh", "reparse", "schedule"):
        out = CliRunner().invoke(cli, ["prices", name, "--help"])
        assert out.exit_code == 0 and "Example:" in out.output
