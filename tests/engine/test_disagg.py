"""Prefill/decode disaggregation (sim/engine/disagg.py) against answers known without the engine:
the transfer time a single request's TTFT gains, KV held on both sides while in flight, the
throughput bound of matched pools, and the schema's rules for pools."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from engine_helpers import workload
from pydantic import ValidationError

from sim.engine.config import (
    CloudFleetConfig,
    SelfHostedFleetConfig,
    is_disaggregated,
    pool_config,
)
from sim.engine.disagg import DisaggFleet, link_params, load_links, transfer_s
from sim.engine.requests import RequestTable
from sim.engine.result import OK
from sim.engine.simulate import simulate_fleet
from sim.perf import build_profile

MODEL = "llama-3.1-8b"
BASE = {"gpu": "h100-sxm", "servers": 1, "gpus_per_server": 1, "tp": 1, "gpu_price_usd": 25000.0}


def factory(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
    return build_profile(MODEL, gpu, tp=tp, precision=precision or "bf16", mem_util=mem_util)


def disagg(**keys) -> SelfHostedFleetConfig:
    return SelfHostedFleetConfig(name="dis", **BASE, **{"prefill": {}, "decode": {}, **keys})


def run(cfg, w):
    return simulate_fleet(cfg, w, profile_factory=factory, rng=np.random.default_rng(7))


# -- schema -----------------------------------------------------------------------------------------
def test_pools_inherit_the_fleet_and_an_other_offer_is_priced_on_its_own():
    cfg = CloudFleetConfig(
        name="d",
        provider="lambda",
        instance="gpu_8x_h100_sxm5",
        price_usd_per_hour=23.92,
        gpus_per_instance=8,
        tp=4,
        prefill={"max_replicas": 2},
        decode={"gpu": "a100-80gb", "instance": "gpu_8x_a100_80gb_sxm4"},
    )
    prefill, decode = pool_config(cfg, "prefill"), pool_config(cfg, "decode")
    assert (prefill.gpu, prefill.tp, prefill.price_usd_per_hour, prefill.max_replicas) == (
        "h100-sxm",
        4,
        23.92,
        2,
    )
    # Another GPU and instance: not the fleet's H100 price.
    assert (decode.gpu, decode.tp, decode.price_usd_per_hour, decode.gpus_per_instance) == (
        "a100-80gb",
        4,
        None,
        None,
    )
    assert not is_disaggregated(prefill) and is_disaggregated(cfg)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefill": {}}, "decode: a disaggregated fleet needs both"),
        ({"kv_link_gbps": 10.0}, "kv_link_gbps: only for a disaggregated fleet"),
        ({"prefill": {"tp": 3}, "decode": {}}, "prefill.tp: tensor parallelism must be a power"),
        ({"prefill": {}, "decode": {"servers": 0}}, "servers"),
        ({"prefill": {}, "decode": {}, "kv_link": "carrier-pigeon"}, "kv_link"),
    ],
)
def test_bad_pools_are_refused_with_the_field_named(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        SelfHostedFleetConfig(name="x", **BASE, **kwargs)


def test_spot_preemptions_are_refused_in_a_disaggregated_fleet():
    with pytest.raises(ValidationError, match="spot preemptions are not modelled"):
        CloudFleetConfig(
            name="d",
            instance="i",
            term="spot",
            spot_preemptions_per_hour=1.0,
            prefill={},
            decode={},
        )


def test_link_defaults_come_from_the_table_and_scale_with_the_smaller_tp():
    links = load_links()
    assert set(links) == {"nvlink", "infiniband", "roce", "pcie"}
    assert all(link.latency_estimate for link in links.values())  # flagged in the data
    cfg = disagg(kv_link="infiniband")
    assert link_params(cfg, 8, 4) == (links["infiniband"].gbps_per_gpu * 4, links["infiniband"].latency_s)  # fmt: skip
    cfg = disagg(kv_link="roce", kv_link_gbps=12.5, kv_link_latency_s=0.002)
    assert link_params(cfg, 8, 8) == (12.5, 0.002)
    assert transfer_s(2e9, 50.0, 1e-4) == pytest.approx(0.0401)


# -- known answers ----------------------------------------------------------------------------------
def test_ttft_of_an_isolated_request_is_prefill_plus_exactly_the_transfer():
    prompt, output = 3000, 20
    w = workload([0.0], prompt, output)
    fast = run(disagg(kv_link_gbps=1e6, kv_link_latency_s=0.0), w)
    slow = run(disagg(kv_link_gbps=2.0, kv_link_latency_s=0.25), w)
    profile = factory("h100-sxm", 1)
    kv_bytes = prompt * profile.kv_bytes_per_token
    assert fast.status[0] == slow.status[0] == OK
    # One prefill step of the whole prompt, then the transfer.
    assert fast.ttft_s[0] == pytest.approx(profile.prefill_time_s(prompt) + kv_bytes / 1e15)
    assert slow.ttft_s[0] - fast.ttft_s[0] == pytest.approx(
        0.25 + kv_bytes / 2e9 - kv_bytes / 1e15, rel=1e-9
    )
    # Decoding starts when the KV lands: the time after the first token does not change.
    assert slow.e2e_s[0] - slow.ttft_s[0] == pytest.approx(fast.e2e_s[0] - fast.ttft_s[0])
    assert slow.meta["kv_link"]["transfers"] == 1


def test_kv_in_flight_is_held_on_both_sides():
    prompt = 2000
    table = RequestTable(workload([0.0], prompt, 50))
    env = simpy.Environment()
    cfg = disagg(kv_link_gbps=1e6, kv_link_latency_s=1.0)  # a one-second transfer window
    profile = factory("h100-sxm", 1)
    fleet = DisaggFleet(
        env, table, cfg, profiles=(profile, profile), rng=np.random.default_rng(0), window_s=60
    )
    fleet.start_arrivals()
    (pre,), (dec,) = fleet.prefill.replicas, fleet.decode.replicas
    prefill_end = profile.prefill_time_s(prompt)
    env.run(until=prefill_end + 0.5)
    assert fleet.n_in_flight == 1
    assert pre.kv_used == prompt and not pre.running  # finished on the prefill side, KV kept
    assert dec.kv_used == prompt and not dec.running  # reserved on the decode side
    env.run(until=prefill_end + 1.0 + 1e-6)
    assert fleet.n_in_flight == 0
    assert pre.kv_used == 0  # freed once the decode side has it
    assert dec.kv_used >= prompt and list(dec.running) == [0]  # decoding now
    env.run(until=fleet.done)
    assert dec.kv_used == 0 and table.status[0] == OK


def test_matched_pools_with_a_free_link_keep_the_aggregated_throughput_bound():
    """2,000 requests at once, 64-token prompts, 512 output tokens, on one H100 running Llama-3.1-8B:
    decode-bound. The decode pool is the aggregated replica itself; the prefill pool takes the
    prompts off it. So the disaggregated throughput (output tokens over the makespan) is at least
    the aggregated one, less 1% for the jump approximation and the tail of the last batch, and
    at most the aggregated one plus the share of its time prefill could take: every prompt
    prefilled alone (chunked prefill rides on decode steps, so the real share is much smaller)."""
    n, prompt, output = 2000, 64, 512
    w = workload(np.zeros(n), prompt, output)
    agg = run(SelfHostedFleetConfig(name="agg", **BASE), w)
    dis = run(disagg(kv_link_gbps=1e6, kv_link_latency_s=0.0), w)
    assert (agg.status == OK).all() and (dis.status == OK).all()
    agg_tput = n * output / np.nanmax(agg.finish_s)
    dis_tput = n * output / np.nanmax(dis.finish_s)
    prefill_share = n * factory("h100-sxm", 1).prefill_time_s(prompt) / np.nanmax(agg.finish_s)
    assert 0.99 * agg_tput <= dis_tput <= agg_tput / (1 - prefill_share)
    # And the bill covers both pools.
    assert set(dis.cost_breakdown_usd) == {f"{p}.{k}" for p in ("prefill", "decode") for k in ("capex", "colo", "power")}  # fmt: skip
    pools = dis.meta["pools"]
    assert sum(p["cost_usd"] for p in pools.values()) == pytest.approx(dis.total_cost_usd)
    assert pools["decode"]["gpu_util"] > pools["prefill"]["gpu_util"]


def test_a_request_the_decode_pool_cannot_hold_is_refused_before_prefill():
    small = disagg(decode={"gpu": "l4", "gpu_price_usd": 2500.0}, kv_link_gbps=1e6)
    cap = pool_kv = factory("l4", 1).kv_capacity_tokens
    w = workload([0.0, 0.1], [100, cap], [10, 10])
    r = run(small, w)
    assert r.status.tolist() == [OK, 2]  # DROPPED
    assert r.meta["pools"]["decode"]["kv_capacity_tokens"] == pool_kv


def test_one_token_outputs_finish_at_the_prefill_without_a_transfer():
    r = run(disagg(kv_link_latency_s=5.0), workload([0.0, 1.0], 500, 1))
    assert (r.status == OK).all()
    assert r.meta["kv_link"]["transfers"] == 0
    assert (r.ttft_s < 1.0).all()


def test_same_seed_same_result():
    w = workload(np.linspace(0, 30, 300), 800, 100)
    a, b = run(disagg(), w), run(disagg(), w)
    assert np.array_equal(a.finish_s, b.finish_s, equal_nan=True)
    assert a.total_cost_usd == b.total_cost_usd


def test_streaming_refuses_a_disaggregated_fleet():
    from sim.engine import simulate_fleet_streaming

    with pytest.raises(ValueError, match="prefill: disaggregated fleet 'dis' cannot stream yet"):
        simulate_fleet_streaming(
            disagg(), iter([]), profile_factory=factory, rng=np.random.default_rng(0)
        )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("fleet.disagg-h100-a100.decode.bogus=1", "fleet[1].decode.bogus"),
        ("fleet.disagg-h100-a100.decode.gpu=l4", "fleet[1].decode.tp"),  # 70B on 4 x L4
    ],
)
def test_a_bad_pool_in_a_scenario_names_its_field(override, field):
    from pathlib import Path

    from sim.errors import InputError
    from sim.scenario import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "disaggregated.toml"
    with pytest.raises(InputError) as info:
        load_scenario(path, [override])
    assert info.value.field == field


def test_tight_memory_on_both_sides_drains_every_request():
    """Prefill KV for two prompts, decode KV for one request at a time: prefilled requests wait
    holding their KV, the prefill replica waits for it to be released, and all of it drains in
    order (no request restarted, none stranded)."""
    from dataclasses import dataclass

    from engine_helpers import FakeProfile

    @dataclass(frozen=True)
    class Profile(FakeProfile):
        kv_bytes_per_token: int = 1000

    pre, dec = Profile(kv_capacity_tokens=1000), Profile(kv_capacity_tokens=700)

    def tight(gpu, tp, precision=None, mem_util=0.9, engine_profile=None):
        return pre if gpu == "h100-sxm" else dec

    cfg = disagg(decode={"gpu": "a100-80gb", "gpu_price_usd": 1.0}, kv_link_gbps=1.0)
    r = simulate_fleet(
        cfg, workload(np.zeros(10), 400, 200), profile_factory=tight, rng=np.random.default_rng(0)
    )
    assert (r.status == OK).all() and not r.attempts.any()
    # One decode at a time (600 of 700 tokens each): they finish in arrival order.
    assert (np.diff(r.finish_s) > 0).all()
