"""Loading scenario files: validation errors name file, field and reason; --set overrides."""

from __future__ import annotations

import pytest

from sim.engine.config import ApiFleetConfig, CloudFleetConfig, DistSpec, SelfHostedFleetConfig
from sim.errors import InputError
from sim.scenario import apply_override, load_scenario, parse_value


def test_small_scenario_loads_into_the_fleet_dataclasses(small_toml):
    sc = load_scenario(small_toml)
    assert (sc.name, sc.seed, sc.replications, sc.price_as_of) == ("small", 7, 3, "2025-06-01")
    api, cloud, own = sc.fleets
    assert isinstance(api, ApiFleetConfig) and api.price_usd_per_mtok_input == 0.88
    assert isinstance(cloud, CloudFleetConfig) and cloud.tp == 4 and cloud.max_replicas == 4
    # a bare number for a distribution means a constant
    assert cloud.provision_s == DistSpec("const", value=240.0)
    assert cloud.engine.service == "exponential" and cloud.engine.service_mean_s == 2.0
    assert isinstance(own, SelfHostedFleetConfig) and own.gpu_price_usd == 25000.0
    assert sc.slo.targets_s == {"ttft_p99_s": 2.0, "e2e_p99_s": 60.0}
    assert sc.slo.min_success_rate == 0.99


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            "max_replicas = 4",
            "replicas_mx = 4",
            "fleet[1].replicas_mx",
            "unknown key (did you mean max_replicas?)",
        ),
        (
            "rate_per_s = 2.0",
            "rate_per_s = 2.0\n[scenarios]\nx = 1",
            "scenarios",
            "unknown key (did you mean scenario?)",
        ),
        ("tp = 4", "tp = 3", "fleet[1].tp", "tensor parallelism must be a power of two, got 3"),
        ("tp = 4", 'tp = "four"', "fleet[1].tp", "expected an integer, got str 'four'"),
        (
            "price_usd_per_hour = 98.32",
            "price_usd_per_hour = -1.0",
            "fleet[1].price_usd_per_hour",
            "must be >= 0.01, got -1.0",
        ),
        ("max_replicas = 4", "max_replicas = 0", "fleet[1].max_replicas", "must be >= 1, got 0"),
        (
            'kind = "cloud"',
            'kind = "clod"',
            "fleet[1].kind",
            "must be one of api, cloud, self_hosted; got 'clod' (did you mean cloud?)",
        ),
        (
            "gpu_price_usd = 25000",
            'gpu_price_usd = 25000\nterm = "x"',
            "fleet[2].term",
            "unknown key",
        ),
        (
            "provision_s = 240",
            'provision_s = { dist = "lognormal", median = 200 }',
            "fleet[1].provision_s.sigma",
            "required for dist = 'lognormal'",
        ),
        ("ttft_p99_s = 2.0", "ttft_p99_s = 0", "slo.ttft_p99_s", "must be > 0, got 0"),
        (
            "price_as_of = 2025-06-01",
            'price_as_of = "yesterday"',
            "scenario.price_as_of",
            "expected a date (2025-06-01) or \"latest\", got str 'yesterday'",
        ),
        ('name = "llama-3.1-70b"', 'name = "llama-9"', "model.name", "unknown model"),
        (
            "gpus_per_server = 8\ntp = 8",
            "gpus_per_server = 8\ntp = 16",
            "fleet[2].tp",
            "1 x 8 GPUs do not split into replicas of tp = 16",
        ),
    ],
)
def test_bad_values_fail_naming_file_and_field(write_toml, old, new, field, reason):
    path = write_toml(old, new)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == field
    assert err.reason.startswith(reason)


def test_unknown_key_error_carries_its_line(write_toml):
    path = write_toml("max_replicas = 4", "replicas_mx = 4")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    line = path.read_text().splitlines().index("replicas_mx = 4") + 1
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: fleet[1].replicas_mx: ")


def test_toml_syntax_error_is_an_input_error(write_toml):
    path = write_toml("seed = 7", "seed = = 7")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.field is None
    assert "invalid TOML" in info.value.reason and "line" in info.value.reason


def test_model_that_does_not_fit_is_rejected(write_toml):
    # 70B in BF16 needs ~141 GB of weights: one 80 GB H100 cannot hold it (reference facts).
    path = write_toml(
        'engine = { service = "exponential", service_mean_s = 2.0 }\n\n[[fleet]]\nname = "own',
        '\n[[fleet]]\nname = "own',
    )
    with pytest.raises(InputError) as info:
        load_scenario(path, ["fleet.cloud-h100.tp=1"])
    assert info.value.field == "fleet[1].tp"
    assert "does not fit" in info.value.reason


def test_set_overrides_by_index_and_by_name(small_toml):
    sc = load_scenario(
        small_toml,
        [
            "workload.rate_scale=2",
            "fleet.1.max_replicas=6",
            "fleet.own-8xh100.servers=2",
            'scenario.name="other"',
        ],
    )
    assert sc.workload.rate_scale == 2
    assert sc.fleets[1].max_replicas == 6
    assert sc.fleets[2].servers == 2
    assert sc.name == "other"
    assert sc.raw["fleet"][1]["max_replicas"] == 6  # the resolved config shows the override


def test_set_into_nested_table_and_typo_is_caught(small_toml):
    sc = load_scenario(small_toml, ["fleet.1.engine.max_batch_seqs=128"])
    assert sc.fleets[1].engine.max_batch_seqs == 128
    with pytest.raises(InputError) as info:
        load_scenario(small_toml, ["fleet.1.max_replica=6"])
    assert info.value.field == "fleet[1].max_replica"
    assert info.value.reason == "unknown key (did you mean max_replicas?)"


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ("fleet.9.tp=2", "fleet.9", "index 9 out of range (0..2, 0-based)"),
        ("fleet.cloud-h10.tp=2", "fleet.cloud-h10", "no entry named 'cloud-h10'"),
        ("workload.rate_scale", "workload.rate_scale", "expected KEY=VALUE"),
        ("fleet.1=3", "fleet.1", "fleet.1 names a whole table"),
    ],
)
def test_bad_set_paths(small_toml, item, field, reason):
    with pytest.raises(InputError) as info:
        load_scenario(small_toml, [item])
    assert info.value.source == "--set"
    assert info.value.field == field
    assert info.value.reason.startswith(reason)


def test_parse_value_reads_toml_literals_and_falls_back_to_text():
    assert parse_value("2") == 2 and parse_value("2.5") == 2.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("spot") == "spot"  # not a TOML literal: taken as text
    raw = {"fleet": [{"name": "a"}]}
    apply_override(raw, "fleet.a.term=spot")
    assert raw["fleet"][0]["term"] == "spot"
