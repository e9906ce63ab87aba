"""A small constructed market for the advisor tests, and a fleet-less scenario to ask it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from warehouse.records import PriceRecord

OBSERVED = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
SKU_A = "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct"
SKU_B = "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"

SCENARIO = """
[scenario]
name = "market"
seed = 7
replications = 2
window_s = 60

[workload]
generator = "poisson"
rate_per_s = 2.0
duration_s = 600
prompt_tokens = { dist = "lognormal", median = 400, sigma = 0.4, max = 2048 }
output_tokens = { dist = "lognormal", median = 150, sigma = 0.4, max = 512 }

[model]
name = "llama-3.1-8b"
precision = "bf16"

[slo]
ttft_p99_s = 3.0
tpot_p99_s = 0.1
"""


def _api(source, provider, sku, inp, out) -> list[PriceRecord]:
    return [
        PriceRecord(source, "api_token", provider, sku, "", "on_demand", unit, Decimal(str(p)))
        for unit, p in (("usd_per_mtok_input", inp), ("usd_per_mtok_output", out))
    ]


def _gpu(source, provider, sku, term, price, gpu_model, count, unit="usd_per_hour", region="r1"):
    return PriceRecord(
        source,
        "gpu_instance",
        provider,
        sku,
        region,
        term,
        unit,
        Decimal(str(price)),
        gpu_model=gpu_model,
        gpu_count=count,
    )


def market_records() -> dict[str, list[PriceRecord]]:
    """Expensive APIs so GPU fleets compete; a reserved term cheaper than on demand."""
    return {
        "litellm": [
            *_api("litellm", "deepinfra", SKU_A, 6.0, 18.0),
            *_api("litellm", "together_ai", SKU_B, 8.0, 20.0),
            *_api("litellm", "vertex_ai", "vertex_ai/meta/llama-3.1-8b-instruct-maas", 0, 0),
        ],
        "lambda": [
            _gpu("lambda", "lambda", "gpu_1x_h100", "on_demand", 3.0, "H100-SXM", 1.0),
            _gpu("lambda", "lambda", "gpu_1x_a100", "on_demand", 1.6, "A100-80GB", 1.0),
            _gpu("lambda", "lambda", "gpu_1x_a10x", "on_demand", 0.5, "A10", 1.0),  # no perf model
        ],
        "aws": [
            _gpu("aws", "aws", "p5.1x", "on_demand", 4.0, "H100-SXM", 1.0, region="us-east-1"),
            _gpu("aws", "aws", "p5.1x", "reserved_1y", 2.2, "H100-SXM", 1.0, region="us-east-1"),
        ],
        "gpu_purchase": [
            PriceRecord(
                "gpu_purchase",
                "gpu_purchase",
                "shop",
                "NVIDIA H100 SXM",
                "",
                "purchase",
                "usd",
                Decimal("25000"),
                gpu_model="H100-SXM",
                gpu_count=1.0,
            )
        ],
    }
