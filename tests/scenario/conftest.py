"""Scenario files shared by the tests in this folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# Every price is explicit so no test needs a price from the warehouse; the cloud and self-hosted
# fleets use service = "exponential" so no test depends on the serving-physics model.
SMALL_SCENARIO = textwrap.dedent(
    """
    [scenario]
    name = "small"
    seed = 7
    replications = 3
    price_as_of = 2025-06-01
    window_s = 60

    [workload]
    generator = "poisson"
    rate_per_s = 2.0
    duration_s = 600
    lengths_from = "builtin:azure2023_conv"

    [model]
    name = "llama-3.1-70b"
    precision = "bf16"

    [slo]
    ttft_p99_s = 2.0
    e2e_p99_s = 60.0

    [[fleet]]
    name = "api"
    kind = "api"
    provider = "together_ai"
    model = "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"
    price_usd_per_mtok_input = 0.88
    price_usd_per_mtok_output = 0.88

    [[fleet]]
    name = "cloud-h100"
    kind = "cloud"
    gpu = "h100-sxm"
    tp = 4
    instance = "p5.48xlarge"
    gpus_per_instance = 8
    price_usd_per_hour = 98.32
    max_replicas = 4
    provision_s = 240
    engine = { service = "exponential", service_mean_s = 2.0 }

    [[fleet]]
    name = "own-8xh100"
    kind = "self_hosted"
    gpu = "h100-sxm"
    servers = 1
    gpus_per_server = 8
    tp = 8
    gpu_price_usd = 25000
    engine = { service = "exponential", service_mean_s = 2.0 }
    """
)


@pytest.fixture
def small_toml(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_SCENARIO)
    return path


@pytest.fixture
def write_toml(tmp_path: Path):
    """Write SMALL_SCENARIO with one text substitution, for error cases."""

    def write(old: str = "", new: str = "", name: str = "bad.toml") -> Path:
        text = SMALL_SCENARIO
        if old:
            assert old in text, old
            text = text.replace(old, new, 1)
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
