"""The API's token buckets throttle exactly as a bucket of one minute's capacity says."""

from __future__ import annotations

import math

import numpy as np
from engine_helpers import workload
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.engine import api as api_module
from sim.engine import simulate_fleet
from sim.engine.api import Attempts, TokenBuckets, limits_never_bind
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


# -- all at once where no limit binds (api.limits_never_bind) ---------------------------------


def _loop(cfg, t, tokens):
    """The token buckets' own answer, request by request."""
    out = Attempts(0, len(t))
    buckets = TokenBuckets(cfg, np.random.default_rng(0))
    buckets.feed(list(t), list(tokens), [out], math.inf)
    return out, buckets


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 300),
    rate=st.floats(0.01, 50.0),
    rpm=st.one_of(st.none(), st.integers(1, 3000)),
    tpm=st.one_of(st.none(), st.integers(100, 3_000_000)),
    tok_scale=st.floats(1.0, 5000.0),
    seed=st.integers(0, 10_000),
)
@example(n=61, rate=1000.0, rpm=60, tpm=None, tok_scale=1.0, seed=0)  # a burst at the limit
def test_sent_at_once_only_where_the_buckets_throttle_nothing(n, rate, rpm, tpm, tok_scale, seed):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, n))
    tokens = np.ceil(rng.exponential(tok_scale, n)).astype(np.int64)
    cfg = api(rpm_limit=rpm, tpm_limit=tpm)
    if limits_never_bind(cfg, t, tokens):
        out, buckets = _loop(cfg, t.tolist(), tokens.tolist())
        assert not buckets.throttles and buckets.retried == 0
        assert out.attempts.tolist() == [1] * n and not out.failed.any()
        assert np.array_equal(out.send, t)


def test_light_traffic_is_shown_unbound_and_heavy_traffic_is_not():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.exponential(1 / 5.0, 20_000))  # 5 req/s against 10,000 rpm
    tokens = rng.integers(100, 3000, 20_000)
    light = api(rpm_limit=10_000, tpm_limit=10_000_000)
    assert limits_never_bind(light, t, tokens)
    assert not limits_never_bind(api(rpm_limit=200), t, tokens)  # 300/min arrive
    assert not limits_never_bind(api(tpm_limit=100_000), t, tokens)  # ~480k tokens/min
    big = tokens.copy()
    big[7] = 20_000_000  # one request larger than the token bucket: always fails
    assert not limits_never_bind(light, t, big)


def test_a_fleet_gives_the_same_result_with_or_without_the_shortcut(monkeypatch):
    rng = np.random.default_rng(4)
    n = 3000
    w = workload(
        np.cumsum(rng.exponential(0.2, n)), rng.integers(10, 4000, n), rng.integers(1, 500, n)
    )
    cfg = api(rpm_limit=10_000, tpm_limit=10_000_000)
    fast = sim(cfg, w)
    assert api_module.limits_never_bind(cfg, w.arrival_s, w.prompt_tokens + w.output_tokens)
    monkeypatch.setattr(api_module, "limits_never_bind", lambda *a: False)
    slow = sim(cfg, w)
    for name in ("start_s", "first_token_s", "finish_s", "status", "attempts", "cost_usd"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert fast.timeseries.equals(slow.timeseries)
    assert fast.meta == slow.meta
