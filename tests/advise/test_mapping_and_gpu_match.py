"""The model -> API SKU mapping against the shipped snapshot, and the GPU/instance match check."""

from __future__ import annotations

import pytest

from sim.advise.skus import api_skus, mapped_models
from sim.errors import InputError
from sim.gpu_match import catalog_gpu_for, check_gpu_matches_offer
from sim.perf import list_models
from warehouse import Warehouse

# Catalog models no provider in the shipped snapshot serves at a non-zero price. Empty today; a
# model added to the catalog without providers must be listed here on purpose.
NO_PROVIDER_IN_SNAPSHOT: set[str] = set()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "snapshot.duckdb"
    import os

    os.environ.pop("INFERCOST_NO_SNAPSHOT", None)
    return Warehouse(path)


def test_every_catalog_model_is_mapped():
    assert set(list_models()) <= set(mapped_models())


def test_every_catalog_model_resolves_to_a_priced_provider(snapshot):
    rows = snapshot.query(
        "SELECT model, provider FROM api_prices WHERE input_per_mtok > 0 AND output_per_mtok > 0"
    ).to_dicts()
    served: dict[str, set[str]] = {}
    for model in list_models():
        skus = set(api_skus(model))
        served[model] = {r["provider"] for r in rows if r["model"] in skus}
    unserved = {m for m, providers in served.items() if not providers}
    assert unserved == NO_PROVIDER_IN_SNAPSHOT
    assert len(served["llama-3.1-70b"]) >= 2


def test_catalog_gpu_for_warehouse_names():
    assert catalog_gpu_for("H100-SXM") == "h100-sxm"
    assert catalog_gpu_for("A100-80GB") == "a100-80gb"
    assert catalog_gpu_for("H100-PCIe") == "h100-pcie"
    assert catalog_gpu_for("A10") is None  # A10 is not the A10G, and not in the catalog
    assert catalog_gpu_for(None) is None


def test_gpu_must_match_the_priced_instance():
    check_gpu_matches_offer("h100-sxm", "H100-SXM", source="s.toml", field="fleet[1].gpu")
    check_gpu_matches_offer("h100-sxm", None, source="s.toml", field="fleet[1].gpu")
    with pytest.raises(InputError) as err:
        check_gpu_matches_offer(
            "h100-sxm", "A10", source="s.toml", field="fleet[1].gpu", sku="gpu_1x_a10"
        )
    assert err.value.source == "s.toml" and err.value.field == "fleet[1].gpu"
    assert "gpu_1x_a10 has A10" in err.value.reason


def test_advise_refuses_a_scenario_fleet_priced_on_another_gpu(tmp_path, monkeypatch):
    from advise_market import OBSERVED, SCENARIO, market_records

    from sim.advise import bridge
    from sim.advise.screen import WorkloadStats
    from sim.advise.search import gather

    monkeypatch.setenv("INFERCOST_NO_SNAPSHOT", "1")
    wh = Warehouse(":memory:")
    for source, records in market_records().items():
        wh.ingest_run(source, records, started_at=OBSERVED, observed_at=OBSERVED)
    path = tmp_path / "mismatch.toml"
    path.write_text(
        SCENARIO
        + '\n[[fleet]]\nname = "c"\nkind = "cloud"\ngpu = "h100-sxm"\ntp = 1\n'
        + 'provider = "lambda"\ninstance = "gpu_1x_a100"\n'
    )
    scenario, c = bridge.load_question(path)
    stats = WorkloadStats.from_workload(bridge.first_workload(scenario, scenario.seed))
    with pytest.raises(InputError) as err:
        gather(scenario, c, wh, stats)
    assert err.value.field == "fleet[0].gpu" and "A100-80GB" in err.value.reason


def test_sim_run_refuses_a_gpu_that_is_not_the_priced_instances(tmp_path):
    """`gpu = "h100-sxm"` priced as Lambda's gpu_1x_a10 would run at H100 speed for an A10 price."""
    from pathlib import Path

    from sim.run import ensure_prices
    from sim.scenario import load_scenario
    from warehouse import Warehouse

    peak = Path(__file__).resolve().parents[2] / "scenarios" / "peak.toml"
    wrong = [
        'model.name="llama-3.1-8b"',
        'fleet.1.instance="gpu_1x_a10"',
        "fleet.1.tp=1",
        'fleet.1.gpu="h100-sxm"',
    ]
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(InputError) as err:
            ensure_prices(load_scenario(peak, wrong), wh)
        assert err.value.field == "fleet[1].gpu" and "A10" in err.value.reason
        # The shipped pairing (h100-sxm on gpu_8x_h100_sxm5) passes and is priced.
        assert ensure_prices(load_scenario(peak), wh).prices["cloud-8xh100"]["sku"] == "gpu_8x_h100_sxm5"  # fmt: skip
