"""Price resolution through a real (in-memory) warehouse holding hand-made price records."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from sim.errors import InputError
from sim.pricing import needs_prices, resolve_prices
from sim.scenario import load_scenario
from warehouse import PriceRecord, Warehouse

OBSERVED = datetime(2025, 5, 1)


def _rec(source, kind, provider, sku, unit, price, *, region="", term="on_demand", **extra):
    return PriceRecord(
        source=source, kind=kind, provider=provider, sku=sku, region=region, term=term, unit=unit,
        price=Decimal(str(price)), **extra,
    )  # fmt: skip


@pytest.fixture
def wh():
    wh = Warehouse(":memory:", load_snapshot=False)
    api = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    wh.ingest_run(
        "litellm",
        [
            _rec("litellm", "api_token", "together_ai", api, "usd_per_mtok_input", "0.88"),
            _rec("litellm", "api_token", "together_ai", api, "usd_per_mtok_output", "0.90"),
        ],
        started_at=OBSERVED,
        observed_at=OBSERVED,
    )
    gpu = {"gpu_model": "H100-SXM", "gpu_count": 8.0}
    wh.ingest_run(
        "lambda",
        [
            _rec(
                "lambda",
                "gpu_instance",
                "lambda",
                "gpu_8x_h100_sxm5",
                "usd_per_hour",
                "23.92",
                region="us-east-1",
                **gpu,
            ),
            _rec(
                "lambda",
                "gpu_instance",
                "lambda",
                "gpu_8x_h100_sxm5",
                "usd_per_hour",
                "21.00",
                region="us-west-1",
                **gpu,
            ),
            _rec(
                "lambda",
                "gpu_instance",
                "lambda",
                "gpu_8x_h100_sxm5",
                "usd_per_hour",
                "9.50",
                region="us-west-1",
                term="spot",
                **gpu,
            ),
        ],
        started_at=OBSERVED,
        observed_at=OBSERVED,
    )
    wh.ingest_run(
        "gpu_purchase",
        [
            _rec(
                "gpu_purchase",
                "gpu_purchase",
                "amazon",
                f"H100 SXM offer {k}",
                "usd",
                p,
                term="purchase",
                gpu_model="H100-SXM",
                gpu_count=1.0,
            )
            for k, p in enumerate(("24000", "30000", "27000"))
        ],
        started_at=OBSERVED,
        observed_at=OBSERVED,
    )
    yield wh
    wh.close()


SCENARIO = """
[scenario]
name = "priced"
price_as_of = 2025-06-01
[workload]
generator = "poisson"
rate_per_s = 1
duration_s = 60
lengths_from = "builtin:azure2023_conv"
[model]
name = "llama-3.1-70b"
[[fleet]]
name = "api"
kind = "api"
provider = "together_ai"
model = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
[[fleet]]
name = "cloud"
kind = "cloud"
gpu = "h100-sxm"
tp = 8
provider = "lambda"
instance = "gpu_8x_h100_sxm5"
[[fleet]]
name = "own"
kind = "self_hosted"
gpu = "h100-sxm"
"""


@pytest.fixture
def priced_toml(tmp_path):
    path = tmp_path / "priced.toml"
    path.write_text(SCENARIO)
    return path


def test_prices_resolve_from_the_warehouse_with_provenance(wh, priced_toml):
    sc = load_scenario(priced_toml)
    assert needs_prices(sc)
    sc = resolve_prices(sc, wh)
    assert not needs_prices(sc)
    api, cloud, own = sc.fleets
    assert (api.price_usd_per_mtok_input, api.price_usd_per_mtok_output) == (0.88, 0.90)
    # the source has no cached-input price: it is charged as input, and the summary says so
    assert api.price_usd_per_mtok_cached_input == 0.88
    assert "cached input priced as input" in sc.prices["api"]["note"]
    # no region given: the cheapest on-demand region wins (21.00 in us-west-1, not the 9.50 spot)
    assert cloud.price_usd_per_hour == 21.0 and cloud.gpus_per_instance == 8
    assert sc.prices["cloud"]["region"] == "us-west-1" and sc.prices["cloud"]["source"] == "lambda"
    assert sc.prices["cloud"]["valid_from"].startswith("2025-05-01")
    # median of the three purchase offers 24k, 27k, 30k
    assert own.gpu_price_usd == 27000.0
    assert sc.prices["own"]["min_usd"] == 24000.0 and sc.prices["own"]["max_usd"] == 30000.0


def test_spot_term_and_explicit_region(wh, priced_toml):
    sc = resolve_prices(load_scenario(priced_toml, ["fleet.cloud.term=spot"]), wh)
    assert sc.fleets[1].price_usd_per_hour == 9.5
    sc = resolve_prices(load_scenario(priced_toml, ["fleet.cloud.region=us-east-1"]), wh)
    assert sc.fleets[1].price_usd_per_hour == 23.92


def test_price_date_before_any_observation_fails_naming_the_field(wh, priced_toml):
    sc = load_scenario(priced_toml, ["scenario.price_as_of=2024-01-01"])
    with pytest.raises(InputError) as info:
        resolve_prices(sc, wh)
    assert info.value.field == "fleet[0].model"
    assert (
        "no token price for together_ai" in info.value.reason
        and "as of 2024-01-01" in info.value.reason
    )


def test_unknown_instance_and_gpu_fail_naming_the_field(wh, priced_toml):
    with pytest.raises(InputError) as info:
        resolve_prices(
            load_scenario(
                priced_toml, ['fleet.cloud.instance="p5.48xlarge"', 'fleet.cloud.provider="aws"']
            ),
            wh,
        )
    assert info.value.field == "fleet[1].instance"
    assert (
        info.value.reason
        == "no price for aws p5.48xlarge on_demand as of 2025-06-01; set price_usd_per_hour"
    )
    with pytest.raises(InputError) as info:
        resolve_prices(load_scenario(priced_toml, ['fleet.own.gpu="a40"']), wh)
    assert info.value.field == "fleet[2].gpu_price_usd"


def test_explicit_prices_need_no_warehouse(priced_toml):
    sc = load_scenario(
        priced_toml,
        [
            "fleet.api.price_usd_per_mtok_input=1", "fleet.api.price_usd_per_mtok_output=2",
            "fleet.cloud.price_usd_per_hour=30", "fleet.cloud.gpus_per_instance=8", "fleet.own.gpu_price_usd=20000",
        ],
    )  # fmt: skip
    assert not needs_prices(sc)
    sc = resolve_prices(sc, warehouse=None)
    assert sc.prices["cloud"] == {"source": "scenario", "usd_per_hour": 30.0}


def test_hybrid_overflow_api_is_priced_too(wh, priced_toml):
    overflow = '{provider = "together_ai", model = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"}'
    sc = resolve_prices(load_scenario(priced_toml, [f"fleet.own.overflow={overflow}"]), wh)
    own = sc.fleets[2]
    assert own.overflow.price_usd_per_mtok_output == 0.90
    assert sc.prices["own"]["overflow"]["source"] == "litellm"


def test_explicit_price_still_needs_the_gpu_count(wh, priced_toml):
    sc = resolve_prices(load_scenario(priced_toml, ["fleet.cloud.price_usd_per_hour=30"]), wh)
    assert sc.fleets[1].price_usd_per_hour == 30.0 and sc.fleets[1].gpus_per_instance == 8
    assert sc.prices["cloud"]["source"] == "scenario"
    with pytest.raises(InputError) as info:
        resolve_prices(
            load_scenario(
                priced_toml, ["fleet.cloud.price_usd_per_hour=30", 'fleet.cloud.instance="x1"']
            ),
            wh,
        )
    assert info.value.field == "fleet[1].gpus_per_instance"
    assert info.value.reason.endswith("set gpus_per_instance")


def test_shipped_scenarios_price_from_the_shipped_snapshot(tmp_path):
    """`sim run scenarios/X.toml` works out of the box: every price it leaves unset is in the snapshot."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    wh = Warehouse(tmp_path / "snapshot.duckdb")  # a new file loads warehouse/snapshot
    for path in sorted((repo / "scenarios").glob("*.toml")):
        sc = resolve_prices(load_scenario(path), wh)
        assert not needs_prices(sc), path.name
        for fleet in sc.fleets:
            assert sc.prices[fleet.name]["source"], (path.name, fleet.name)


# -- the one choice rule (docs/pricing.md) ---------------------------------------------------


def _api_pair(source, provider, model, inp, out):
    return [
        _rec(source, "api_token", provider, model, "usd_per_mtok_input", inp),
        _rec(source, "api_token", provider, model, "usd_per_mtok_output", out),
    ]


def test_deepseek_chat_resolves_to_the_newest_observation_in_the_shipped_snapshot(tmp_path):
    path = tmp_path / "deepseek.toml"
    path.write_text(
        SCENARIO.split("[[fleet]]")[0]
        + '[[fleet]]\nname = "api"\nkind = "api"\nprovider = "deepseek"\nmodel = "deepseek-chat"\n'
    )
    with Warehouse(":memory:") as shipped:  # loads warehouse/snapshot
        sc = resolve_prices(load_scenario(path, ["scenario.price_as_of=latest"]), shipped)
    prov = sc.prices["api"]
    # LiteLLM's newest map says 0.28/0.42; llm-prices' period from 2025-02-08 says 0.27/1.10.
    assert (prov["source"], prov["usd_per_mtok_input"], prov["usd_per_mtok_output"]) == (
        "litellm",
        0.28,
        0.42,
    )
    (other,) = [a for a in prov["alternatives"] if a["source"] == "llm_prices"]
    assert other["usd_per_mtok_output"] == 1.1 and other["lost"] == "last seen earlier"


def test_a_newer_price_start_replaces_an_older_one_seen_the_same_day(wh, priced_toml):
    model = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    later = datetime(2025, 5, 20)
    pairs = _api_pair("openrouter", "together_ai", model, "0.5", "0.6")
    assert wh.ingest_run("openrouter", pairs, started_at=later, observed_at=later).status == "ok"
    # LiteLLM saw its older price again the same day: the newer start still wins.
    same = _api_pair("litellm", "together_ai", model, "0.88", "0.90")
    assert wh.ingest_run("litellm", same, started_at=later, observed_at=later).status == "ok"
    prov = resolve_prices(load_scenario(priced_toml), wh).prices["api"]
    assert prov["source"] == "openrouter" and prov["usd_per_mtok_input"] == 0.5
    assert [a["lost"] for a in prov["alternatives"]] == ["a newer observation replaced it"]


def test_a_free_price_is_refused_unless_the_fleet_allows_it(wh, priced_toml):
    model = "together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    later = datetime(2025, 5, 20)
    free = _api_pair("litellm", "together_ai", model, "0", "0")
    assert wh.ingest_run("litellm", free, started_at=later, observed_at=later).status == "ok"
    with pytest.raises(InputError, match=r"fleet\[0\]\.allow_free"):
        resolve_prices(load_scenario(priced_toml), wh)
    sc = resolve_prices(load_scenario(priced_toml, ["fleet.api.allow_free=true"]), wh)
    assert sc.prices["api"]["usd_per_mtok_input"] == 0.0


def test_region_glob_pins_and_ties_prefer_us_regions(wh, priced_toml):
    sc = resolve_prices(load_scenario(priced_toml, ['fleet.cloud.region="us-east-*"']), wh)
    prov = sc.prices["cloud"]
    assert (prov["region"], prov["usd_per_hour"]) == ("us-east-1", 23.92)
    sc = resolve_prices(load_scenario(priced_toml), wh)
    prov = sc.prices["cloud"]
    assert prov["region"] == "us-west-1"
    assert [(a["region"], a["lost"]) for a in prov["alternatives"]] == [
        ("us-east-1", "higher price")
    ]


def test_ties_on_price_go_to_a_us_region_not_the_first_name():
    from sim.pricing import region_rank

    regions = ["asia-northeast-1", "europe-west4", "us-central1", "eastus2", "EU-SE-1", "US-CA-1"]
    assert sorted(regions, key=lambda r: (region_rank(r), r)) == [
        "US-CA-1",
        "eastus2",
        "us-central1",
        "EU-SE-1",
        "europe-west4",
        "asia-northeast-1",
    ]


def test_stale_prices_give_warning_lines_in_provenance(wh, priced_toml):
    from sim.pricing import stale_price_warnings

    sc = resolve_prices(load_scenario(priced_toml, ["scenario.price_as_of=latest"]), wh)
    lines = stale_price_warnings(sc, max_age_days=30)
    assert lines and all(line.startswith("warning: fleet ") for line in lines)
    assert any("litellm price of" in line and "days old" in line for line in lines)
    assert sc.prices["api"]["warnings"][0] in lines
    fresh = resolve_prices(load_scenario(priced_toml, ["scenario.price_as_of=2025-05-02"]), wh)
    assert stale_price_warnings(fresh, max_age_days=30) == []
