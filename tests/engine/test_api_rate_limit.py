"""The API's token buckets throttle exactly as a bucket of one minute's capacity says."""

from __future__ import annotations

import numpy as np
from engine_helpers import workload

from sim.engine import simulate_fleet
from sim.engine.config import ApiFleetConfig, DistSpec
from sim.engine.result import FAILED, OK

CONST = DistSpec("const", value=0.0)


def api(**kw):
    base = dict(
        name="a",
        price_usd_per_mtok_input=1.0,
        price_usd_per_mtok_output=1.0,
        network_rtt_s=CONST,
        ttft_s=CONST,
        output_tokens_per_s=DistSpec("const", value=1e9),
        backoff_base_s=0.1,
        backoff_max_s=0.1,
        max_retries=100_000,
    )
    base.update(kw)
    return ApiFleetConfig(**base)


def sim(cfg, w):
    return simulate_fleet(cfg, w, profile_factory=None, rng=np.random.default_rng(3))


def test_rpm_burst_passes_sixty_then_one_per_second():
    w = workload(np.zeros(100), 10, 10)
    r = sim(api(rpm_limit=60), w)
    assert (r.status == OK).all()
    sent = np.sort(r.start_s)
    assert (sent[:60] == 0.0).all()
    # The bucket refills one request per second; retries every <= 0.1 s take each token within 0.1 s.
    later = sent[60:]
    k = np.arange(1, 41)
    assert (later >= k - 1e-9).all() and (later <= k + 0.1).all()
    throttled = int((r.attempts - 1).sum())
    assert throttled > 40 and r.timeseries["throttled"].sum() == throttled


def test_tpm_bucket_counts_prompt_plus_output_tokens():
    w = workload(np.zeros(12), 60, 40)  # 100 tokens each, bucket 1000 tokens, refill 1000/60 per s
    r = sim(api(tpm_limit=1000), w)
    sent = np.sort(r.start_s)
    assert (sent[:10] == 0.0).all()
    assert 6.0 - 1e-9 <= sent[10] <= 6.1 and 12.0 - 1e-9 <= sent[11] <= 12.1


def test_retries_exhausted_fail_the_request():
    w = workload(np.zeros(3), 10, 10)
    r = sim(api(rpm_limit=1, max_retries=2, backoff_base_s=1.0, backoff_max_s=8.0), w)
    assert r.status.tolist().count(OK) == 1
    assert r.status.tolist().count(FAILED) == 2
    assert sorted(r.attempts.tolist()) == [1, 3, 3]  # first try + max_retries retries
    assert r.cost_usd[r.status == FAILED].sum() == 0.0
    assert r.timeseries["failed"].sum() == 2


def test_request_bigger_than_the_token_bucket_fails():
    w = workload([0.0], 900, 200)
    r = sim(api(tpm_limit=1000, max_retries=3), w)
    assert r.status.tolist() == [FAILED] and r.attempts.tolist() == [4]
