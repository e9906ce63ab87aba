"""Fixtures: the constructed market in an in-memory warehouse, and the question file."""

from __future__ import annotations

import pytest
from advise_market import OBSERVED, SCENARIO, market_records

from warehouse import Warehouse


@pytest.fixture
def market(monkeypatch) -> Warehouse:
    monkeypatch.setenv("INFERCOST_NO_SNAPSHOT", "1")
    wh = Warehouse(":memory:")
    for source, records in market_records().items():
        result = wh.ingest_run(source, records, started_at=OBSERVED, observed_at=OBSERVED)
        assert result.status == "ok", result
    return wh


@pytest.fixture
def question(tmp_path):
    path = tmp_path / "market.toml"
    path.write_text(SCENARIO)
    return path
