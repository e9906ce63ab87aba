"""Golden summaries of every shipped scenario, shortened for speed, on the real simulator.

Prices are pinned by --set overrides (the litellm 1.110.2 together_ai prices and Lambda's on-demand
prices the shipped snapshot holds, and a fixed A40 purchase price), so a price refresh does not move these figures: they check
the simulation and its cost accounting. After an intended change to the engine, the perf model
or the traffic generators, rewrite them with `INFERCOST_UPDATE_GOLDEN=1 pytest tests/scenario`
and review the diff.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from sim.run import run_replications
from sim.scenario import load_scenario
from sim.summary import summarize

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"

API_70B = [
    "fleet.api-together.price_usd_per_mtok_input=0.88",
    "fleet.api-together.price_usd_per_mtok_output=0.88",
]
API_8B = [
    "fleet.api-together.price_usd_per_mtok_input=0.18",
    "fleet.api-together.price_usd_per_mtok_output=0.18",
]
LAMBDA_8XH100 = [
    "fleet.cloud-8xh100.price_usd_per_hour=23.92",
    "fleet.cloud-8xh100.gpus_per_instance=8",
]
LAMBDA_1XA100 = [
    "fleet.cloud-a100-scale-to-zero.price_usd_per_hour=1.29",
    "fleet.cloud-a100-scale-to-zero.gpus_per_instance=1",
]

# scenario -> overrides that shorten it (first N requests of a trace, or a lower rate) and pin prices
CASES = {
    "peak": ["workload.max_requests=3000", *API_70B, *LAMBDA_8XH100],
    "baseline": ["workload.max_requests=3000", *API_70B, *LAMBDA_8XH100],
    "bursty_code": ["workload.max_requests=2000", *API_70B, *LAMBDA_8XH100],
    "offline_low_traffic": [
        "workload.duration_s=21600",
        *API_8B,
        *LAMBDA_1XA100,
        "fleet.own-a40.gpu_price_usd=4500",
    ],
    "diurnal_day": ["workload.rate_per_s=0.1", *API_70B, *LAMBDA_8XH100],
    "agent_conversations": [
        "workload.duration_s=600",
        "fleet.api-deepseek.price_usd_per_mtok_input=0.28",
        "fleet.api-deepseek.price_usd_per_mtok_output=0.42",
        "fleet.api-deepseek.price_usd_per_mtok_cached_input=0.028",
        "fleet.api-haiku.price_usd_per_mtok_input=1.0",
        "fleet.api-haiku.price_usd_per_mtok_output=5.0",
        "fleet.api-haiku.price_usd_per_mtok_cached_input=0.1",
        "fleet.api-haiku.price_usd_per_mtok_cache_write=1.25",
    ],
    "week_at_scale": [
        'scenario.engine_path="exact"',  # tests/engine/test_run_streaming.py checks the other
        "workload.tile_to_s=3600",
        "workload.max_requests=3000",
        *API_8B,
        "fleet.cloud-h100.price_usd_per_hour=23.92",
        "fleet.cloud-h100.gpus_per_instance=8",
    ],
    "disaggregated": [
        "workload.max_requests=3000",
        "fleet.aggregated-h100.price_usd_per_hour=23.92",
        "fleet.aggregated-h100.gpus_per_instance=8",
        "fleet.disagg-h100-a100.prefill.price_usd_per_hour=23.92",
        "fleet.disagg-h100-a100.prefill.gpus_per_instance=8",
        "fleet.disagg-h100-a100.decode.price_usd_per_hour=14.32",
        "fleet.disagg-h100-a100.decode.gpus_per_instance=8",
    ],
}

FIGURES = {
    "total_cost_usd": ("total_cost_usd", "mean"),
    "usd_per_mtok_output": ("usd_per_mtok_output", "mean"),
    "success_rate": ("success_rate", "mean"),
    "ttft_p50_s": ("ttft_s", "p50", "mean"),
    "ttft_p99_s": ("ttft_s", "p99", "mean"),
    "tpot_p99_s": ("tpot_s", "p99", "mean"),
    "e2e_p99_s": ("e2e_s", "p99", "mean"),
    "requests_ok": ("requests", "ok"),
    # events, utilisation and SLO windows (added with issue 14; None where they do not apply)
    "scale_up": ("events", "scale_up"),
    "cold_starts": ("events", "cold_starts"),
    "preemptions": ("events", "preemptions"),
    "recomputes": ("events", "recomputes"),
    "spot_kills": ("events", "spot_kills"),
    "throttled": ("events", "throttled"),
    "busy_fraction": ("utilisation", "busy_fraction"),
    "batch_occupancy": ("utilisation", "batch_occupancy"),
    "kv_occupancy": ("utilisation", "kv_occupancy"),
    "slo_windows_missed": ("slo_windows", "missed"),
}


# Prompt-cache figures, kept where a fleet reports them (engine.prefix_cache, API caching).
CACHE_FIGURES = (
    "prefix_hit_rate_tokens",
    "prefix_hit_rate_requests",
    "prefix_evictions",
    "cached_input_tokens",
    "cache_write_tokens",
)


def _sig(value, digits: int = 4):
    if value is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def _dig(entry, path):
    for key in path:
        if entry is None:  # e.g. an API fleet's utilisation
            return None
        entry = entry[key]
    return entry


def _pool_figures(f: dict) -> dict:
    """A disaggregated fleet's pools (busy fraction, cost) and KV transfers, where it has them."""
    out = {}
    for name, pool in (f.get("pools") or {}).items():
        out[f"pool_{name}_busy_fraction"] = _sig(pool["busy_fraction"])
        out[f"pool_{name}_cost_usd"] = _sig(pool["cost_usd"]["mean"])
    if f.get("kv_link"):
        out["kv_link_transfers"] = _sig(f["kv_link"]["transfers"])
    return out


def key_figures(summary: dict) -> dict:
    return {
        "cheapest_meeting_slo": summary["cheapest_meeting_slo"],
        "fleets": {
            f["name"]: {
                "meets_slo": f["meets_slo"],
                **{k: _sig(_dig(f, p)) for k, p in FIGURES.items()},
                **{k: _sig(f[k]["mean"]) for k in CACHE_FIGURES if k in f},
                **_pool_figures(f),
            }
            for f in summary["fleets"]
        },
    }


def test_every_shipped_scenario_has_a_golden_case():
    shipped = sorted(p.stem for p in (REPO / "scenarios").glob("*.toml"))
    assert shipped == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_summary(name):
    scenario = load_scenario(REPO / "scenarios" / f"{name}.toml", CASES[name])
    summary = summarize(scenario, run_replications(scenario, n=1, seed=scenario.seed, workers=1))
    summary = summary.to_json()
    got = key_figures(summary)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("INFERCOST_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps({"overrides": CASES[name], **got}, indent=2) + "\n")
    want = json.loads(path.read_text())
    assert got["cheapest_meeting_slo"] == want["cheapest_meeting_slo"]
    assert sorted(got["fleets"]) == sorted(want["fleets"])
    for fleet, figures in want["fleets"].items():
        for key, value in figures.items():
            if isinstance(value, float):
                assert got["fleets"][fleet][key] == pytest.approx(value, rel=2e-3), (fleet, key)
            else:
                assert got["fleets"][fleet][key] == value, (fleet, key)


def test_peak_figures_by_hand():
    """Three of peak's golden figures backed by arithmetic done here, not by the simulator.

    - API TPOT p99: the API streams output at a lognormal speed (median 80 tokens/s, sigma 0.3),
      so 1/speed is lognormal with median 1/80 and its 99th percentile is exp(2.3263 * 0.3) / 80 =
      0.02513 s; TPOT = (n / speed) / (n - 1) adds a factor n/(n-1) just above 1.
    - API cost: together_ai bills 0.88 USD per million input or output tokens, so the bill is
      0.88e-6 x the tokens of the 3,000 requests; their mean comes from reading the shipped trace
      CSV directly (the first 3,000 of the doubled trace are a sample of it).
    - Requests: max_requests = 3000 keeps exactly 3,000 arrivals. rate_scale = 2 gives every
      recorded request exactly one copy between it and the next one, so the first 3,000 are the
      first 1,500 recorded requests and their copies: they span the trace's first 1,500
      timestamps (309.8 s in the CSV).
    """
    import polars as pl

    scenario = load_scenario(REPO / "scenarios" / "peak.toml", CASES["peak"])
    summary = summarize(scenario, run_replications(scenario, n=1, seed=scenario.seed, workers=1))
    api = summary.fleet("api-together")

    tpot_p99 = math.exp(2.3263 * 0.3) / 80
    assert api.latency("tpot", "p99") == pytest.approx(tpot_p99, rel=0.03)
    assert api.latency("tpot", "p99") >= tpot_p99 * 0.995  # n/(n-1) only raises it

    trace = pl.read_csv(
        REPO / "sim" / "data" / "traces" / "azure2023_conv.csv", try_parse_dates=True
    )
    tokens_per_request = float((trace["ContextTokens"] + trace["GeneratedTokens"]).mean())
    assert api.total_cost_usd.mean == pytest.approx(3000 * tokens_per_request * 0.88e-6, rel=0.08)

    assert api.requests["arrivals"] == 3000 and api.requests["ok"] == 3000
    stamps = trace["TIMESTAMP"]
    span_s = (stamps[1499] - stamps[0]).total_seconds()
    assert summary.workload.duration_s.mean == pytest.approx(span_s, rel=0.01)
