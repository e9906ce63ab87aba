"""Every recorded response, refreshed through the real HTTP path, passes the integrity rules.

This stands in for the shipped snapshot (rebuilt from the same kind of files by
scripts/build_snapshot.py): `sim prices check` on it must exit 0.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from scrapers.refresh import refresh
from sim.cli import cli
from warehouse import Warehouse

# source -> (path, recorded file, content type); llm-prices also serves its vendor files.
RECORDED = {
    "litellm": ("/litellm.json", "litellm_model_prices_1.110.2.json", "application/json"),
    "openrouter": ("/models", "openrouter_models.json", "application/json"),
    "llm_prices": ("/current-v1.json", "simonw_llm_prices_current_v1_trimmed.json", "application/json"),
    "azure": ("/azure", "azure_gpu_retail_prices_projection_excerpt.json", "application/json"),
    "gcp": ("/skus", "gcp_billing_gpu_skus_excerpt.json", "application/json"),
    "lambda": ("/lambda.csv", "skypilot_lambda_vms_v7_excerpt.csv", "text/csv"),
    "runpod": ("/runpod.csv", "skypilot_runpod_vms_0727c2bd.csv", "text/csv"),
    "vast": ("/vast.csv", "skypilot_vast_vms_excerpt.csv", "text/csv"),
    "modal": ("/modal", "modal_pricing_excerpt.html", "text/html; charset=utf-8"),
    "gpu_purchase": ("/rows.csv", "gpu_purchase_price_history_excerpt.csv", "text/csv"),
}  # fmt: skip


def test_recorded_prices_refreshed_over_http_have_no_error_findings(
    tmp_path, serve, fast_http, fixture_bytes, monkeypatch
):
    monkeypatch.setenv("INFERCOST_GCP_API_KEY", "recorded")
    for source, (path, name, content_type) in RECORDED.items():
        body = fixture_bytes(name)
        if source == "gcp":  # the excerpt is a bare list of SKUs: wrap it as one API page
            body = json.dumps({"skus": json.loads(body), "nextPageToken": ""}).encode()
        serve(source, path, body, content_type=content_type)
    for vendor in ("anthropic", "deepseek", "xai"):
        serve(
            None, f"/data/{vendor}.json", fixture_bytes(f"simonw_llm_prices_{vendor}_excerpt.json")
        )
    db = tmp_path / "recorded.duckdb"
    with Warehouse(db, load_snapshot=False) as wh:
        results = refresh(wh, list(RECORDED), http_factory=fast_http)
        assert [(r.source, r.status) for r in results if r.status != "ok"] == []
        errors = [f for f in wh.check() if f.level == "error"]
        assert errors == []
        stored = wh.query("SELECT count(*) FROM price_checks WHERE current AND level = 'error'")
        assert stored.item() == 0
    result = CliRunner().invoke(cli, ["--db", str(db), "prices", "check"])
    assert result.exit_code == 0, result.output


def test_recorded_files_have_no_unreadable_rows(fixture_bytes):
    """Real responses are complete runs: their missing prices still close (issue 15's rule only
    holds back closing when a row was unreadable)."""
    from datetime import UTC, datetime

    from scrapers.base import counting_bad_rows
    from scrapers.registry import get_source

    now = datetime(2026, 1, 1, tzinfo=UTC)
    for source, (_path, name, _type) in RECORDED.items():
        if source in ("gcp", "llm_prices"):
            continue  # served in another shape above; parsed by their own tests
        with counting_bad_rows() as bad:
            get_source(source).parse(fixture_bytes(name), now)
        assert bad.count == 0, (source, name)
