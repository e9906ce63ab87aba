"""A metered LLM API: token-bucket rate limits, client retries with backoff, sampled latency,
per-token and per-request prices with volume tiers and the batch discount.

An API fleet never feeds back into anything else, so its requests are processed after the
submissions are known, in time order with an event heap (the same result SimPy would give, without
a process per request). A hybrid self-hosted fleet submits its overflow here during its own run.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right

import numpy as np

from sim.engine.api_cache import rules_for, warm_prefixes
from sim.engine.config import MONTH_S, ApiFleetConfig
from sim.engine.dists import from_spec
from sim.engine.prefix import PrefixKeys, prefix_keys_of
from sim.engine.requests import RequestTable
from sim.engine.result import FAILED, OK

_EPS = 1e-9  # bucket levels are floats refilled continuously: tolerate rounding


def _need_price(cfg: ApiFleetConfig, field: str) -> float:
    value = getattr(cfg, field)
    if value is None:
        raise ValueError(f"{field}: price not resolved for API fleet {cfg.name!r}")
    if value < 0:
        raise ValueError(f"{field}: price must not be negative, got {value}")
    return float(value)


class ApiFleet:
    """Requests submitted with `submit(i, t)`, then `run()` decides send, latency, status, cost."""

    kind = "api"

    def __init__(self, cfg: ApiFleetConfig, table: RequestTable, rng: np.random.Generator):
        self.cfg = cfg
        self.table = table
        self.price_in = _need_price(cfg, "price_usd_per_mtok_input")
        self.price_out = _need_price(cfg, "price_usd_per_mtok_output")
        cached = cfg.price_usd_per_mtok_cached_input
        self.price_cached = (
            self.price_in if cached is None else _need_price(cfg, "price_usd_per_mtok_cached_input")
        )
        self._setup_prompt_cache(cfg)
        # Bounds are the schema's (sim/engine/config.py, checked when the config is made); only
        # what the schema cannot know yet, a price resolved later, is checked here.
        self.rtt = from_spec(cfg.network_rtt_s, "network_rtt_s")
        self.ttft = from_spec(cfg.ttft_s, "ttft_s")
        self.speed = from_spec(cfg.output_tokens_per_s, "output_tokens_per_s")
        self.batch_latency = from_spec(cfg.batch_latency_s, "batch_latency_s")
        self.tiers = sorted(cfg.volume_tiers, key=lambda tier: tier.above_mtok)
        self._latency_rng, self._jitter_rng = rng.spawn(2)
        self._idx: list[int] = []
        self._t: list[float] = []
        self.idx = np.zeros(0, dtype=np.int64)
        self.cost_usd = np.zeros(0)  # per processed request, aligned with self.idx
        self.throttle_s = np.zeros(0)
        self.retries = 0  # throttled requests sent again after a backoff

    def _setup_prompt_cache(self, cfg: ApiFleetConfig) -> None:
        """prompt_cache: "trace"/unset bills the workload's cached counts, "off" none, and
        "provider" what the provider's rules leave warm (sim/engine/api_cache.py)."""
        self.cache_mode = cfg.prompt_cache or "trace"
        self.cache_rules = None
        self.price_write = self.price_in
        self.cached_input_tokens = 0
        self.cache_write_tokens = 0
        if self.cache_mode != "provider":
            return
        self.cache_rules = rules = rules_for(
            cfg.prompt_cache_rules or cfg.provider, cfg.model, cfg.prompt_cache_ttl_s
        )
        default_ttl = rules_for(rules.provider, cfg.model).ttl_s
        if cfg.price_usd_per_mtok_cache_write is not None and rules.ttl_s == default_ttl:
            self.price_write = _need_price(cfg, "price_usd_per_mtok_cache_write")
        elif rules.write_multiplier is not None:
            # The warehouse holds the default-lifetime write price only (LiteLLM's
            # cache_creation_input_token_cost); other lifetimes come from the rules' multiplier.
            self.price_write = self.price_in * rules.write_multiplier

    def cache_meta(self) -> dict:
        """Cached-input and cache-write tokens of the requests served, and the rules used."""
        meta = {
            "prompt_cache": self.cache_mode,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }
        if self.cache_rules is not None:
            meta["prompt_cache_rules"] = self.cache_rules.provenance()
            meta["price_usd_per_mtok_cache_write"] = self.price_write
        return meta

    def _cached_tokens(self, idx, send, first, prompt, ok):
        """Cached and cache-write prompt tokens of requests `idx` under the fleet's mode."""
        table = self.table
        written = np.zeros(len(idx), dtype=np.int64)
        if self.cache_mode == "off":
            return np.zeros(len(idx), dtype=np.int64), written
        if self.cache_mode == "trace":
            return np.minimum(table.cached_prompt_tokens[idx], prompt), written
        return warm_prefixes(self.cache_rules, self.prefix_keys(), idx, send, first, prompt, ok)

    def prefix_keys(self) -> PrefixKeys:
        """The prefix keys of the table's requests (prompt_cache = "provider")."""
        table = self.table
        block = table.hash_block_tokens
        return prefix_keys_of(
            getattr(table, "hash_ids", None),
            block,
            block,
            table.prompt_tokens,
            f'{self.cfg.name}: prompt_cache = "provider"',
        )

    def submit(self, i: int, t: float) -> None:
        self._idx.append(i)
        self._t.append(t)

    def run(self) -> None:
        table = self.table
        idx = np.asarray(self._idx, dtype=np.int64)
        t_sub = np.asarray(self._t, dtype=np.float64)
        order = np.argsort(t_sub, kind="stable")
        idx, t_sub = idx[order], t_sub[order]
        n = len(idx)
        prompt = table.prompt_tokens[idx]
        output = table.output_tokens[idx]

        if self.limited:
            send, attempts, failed, throttles = self._rate_limit(t_sub, prompt + output)
        else:
            send, attempts = t_sub.copy(), np.ones(n, dtype=np.int64)
            failed, throttles = np.zeros(n, dtype=bool), []
        self.settle(idx, send, attempts, failed)
        self.throttle_s = np.asarray(throttles, dtype=np.float64)

    @property
    def limited(self) -> bool:
        cfg = self.cfg
        return not cfg.batch and (cfg.rpm_limit is not None or cfg.tpm_limit is not None)

    def settle(self, idx, send, attempts, failed, *, defer_price: bool = False) -> None:
        """Requests `idx` (in submission order) were sent for the last time at `send` after
        `attempts` attempts (`failed`: given up): sample their latency, write their times and
        status to the table and price them (`self.idx`, `self.cost_usd`). defer_price: leave
        `cost_usd` None and keep what pricing needs in `price_parts` (the streaming path prices
        volume tiers in completion order across chunks)."""
        cfg, table = self.cfg, self.table
        n = len(idx)
        prompt = table.prompt_tokens[idx]
        output = table.output_tokens[idx]
        rng = self._latency_rng
        if cfg.batch:
            first = send + np.asarray(self.batch_latency.sample(rng, n), dtype=np.float64)
            finish = first  # a batch job returns whole responses: no streaming, no separate TTFT
        else:
            rtt = np.asarray(self.rtt.sample(rng, n), dtype=np.float64)
            ttft = np.asarray(self.ttft.sample(rng, n), dtype=np.float64)
            speed = np.asarray(self.speed.sample(rng, n), dtype=np.float64)
            first = send + rtt + ttft
            # As the issue specifies: RTT + TTFT + output tokens / speed (the first token is
            # counted twice, a bias of one token's time, under 2% for outputs of 50+ tokens).
            finish = first + output / np.maximum(speed, 1e-9)

        ok = ~failed
        table.attempts[idx] = np.minimum(attempts, np.iinfo(np.int16).max)
        ok_idx, bad_idx = idx[ok], idx[failed]
        table.start_s[ok_idx] = send[ok]
        table.first_token_s[ok_idx] = first[ok]
        table.finish_s[ok_idx] = finish[ok]
        table.end_s[ok_idx] = finish[ok]
        table.status[ok_idx] = OK
        table.end_s[bad_idx] = send[failed]  # for failures `send` holds the time of giving up
        table.status[bad_idx] = FAILED

        self.idx = idx
        if defer_price and self.cache_mode == "provider":
            # The provider's cache follows every request in send order: decided by the caller.
            self.cache_inputs = (send, first, prompt, output, finish, ok)
            self.cached_input_tokens = self.cache_write_tokens = 0
            self.price_parts = self.cost_usd = None
            return
        # By send time: the order the provider sees the prompts in (send is sorted already
        # but for retries, which move a request later).
        by_send = np.argsort(send, kind="stable")
        cached, written = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        c, w = self._cached_tokens(idx[by_send], send[by_send], first[by_send], prompt[by_send], ok[by_send])  # fmt: skip
        cached[by_send], written[by_send] = c, w
        self.cached_input_tokens = int(cached[ok].sum())
        self.cache_write_tokens = int(written[ok].sum())
        self.price_parts = (prompt - cached - written, cached, output, finish, ok, written)
        self.cost_usd = None if defer_price else self._token_cost(*self.price_parts)

    def _rate_limit(self, t_sub: np.ndarray, tokens: np.ndarray):
        """The whole workload through the fleet's `TokenBuckets`; at once where no limit can
        bind (`limits_never_bind`): then every request goes through on its first attempt, as the
        buckets would send it."""
        n = len(t_sub)
        if limits_never_bind(self.cfg, t_sub, tokens):
            self.retries = 0
            return t_sub.copy(), np.ones(n, dtype=np.int64), np.zeros(n, dtype=bool), []
        out = Attempts(0, n)
        buckets = TokenBuckets(self.cfg, self._jitter_rng)
        buckets.feed(t_sub.tolist(), tokens.tolist(), [out], math.inf)
        self.retries = buckets.retried
        return out.send, out.attempts, out.failed, buckets.throttles

    def _token_cost(
        self, uncached, cached, output, finish, ok, written=0, factor=None
    ) -> np.ndarray:
        """Each request's price; `factor`: its volume-tier factor, if already known (else the
        tiers are applied over these requests in completion order, from a fresh month)."""
        cfg = self.cfg
        token_usd = (
            uncached * self.price_in
            + cached * self.price_cached
            + written * self.price_write
            + output * self.price_out
        ) / 1e6
        if self.tiers and factor is None:
            # Tier by tokens already billed this month, in order of completion.
            factor = np.ones(len(token_usd))
            ok_pos = np.flatnonzero(ok)
            by_time = ok_pos[np.argsort(finish[ok_pos], kind="stable")]
            tok = (uncached + cached + written + output)[by_time]
            factor[by_time] = TierLedger(self.tiers).factors(finish[by_time], tok)
        if factor is not None:
            token_usd = token_usd * factor
        if cfg.batch:
            token_usd = token_usd * cfg.batch_discount
        return np.where(ok, token_usd + cfg.price_usd_per_request, 0.0)


def limits_never_bind(cfg: ApiFleetConfig, t_sub: np.ndarray, tokens: np.ndarray) -> bool:
    """True if `TokenBuckets` would send every submission (at sorted times `t_sub` >= 0, needing
    `tokens`) on its first attempt, shown for all at once with a margin for rounding.

    Without a throttle a bucket's level just before submission i, refilled from full at t = 0,
    is P_i = min(cap, P_(i-1) - c_(i-1) + rate (t_i - t_(i-1))), which unrolls to
    P_i = rate t_i - C_(i-1) + min over j <= i of (cap - rate t_j + C_(j-1)), with C the running
    sum of the costs c (1 per request; prompt + output tokens). No request is throttled if
    P_i - c_i clears -_EPS everywhere; it is required to clear a margin far above the rounding
    of either computation (each of the n sequential updates rounds by at most a few ulps of the
    largest term), so the sequential loop, which rounds differently, sends them all too. False
    (run the loop) whenever that is not shown, e.g. a limit that binds or comes close."""
    n = len(t_sub)
    if n == 0:
        return True
    t = np.asarray(t_sub, dtype=np.float64)
    if not (t[0] >= 0.0 and np.all(np.diff(t) >= 0.0)):
        return False
    for cap, cost in (
        (cfg.rpm_limit, np.ones(n)),
        (cfg.tpm_limit, np.asarray(tokens, dtype=np.float64)),
    ):
        if cap is None:
            continue
        cap = float(cap)
        rate = cap / 60.0
        after = np.cumsum(cost)  # C_i
        before = after - cost  # C_(i-1)
        level = rate * t - before + np.minimum.accumulate(cap - rate * t + before)
        largest = cap + rate * float(t[-1]) + float(after[-1])
        margin = 16.0 * (n + 16) * np.finfo(np.float64).eps * largest + 1e-6
        if not float(np.min(level - cost)) > margin:
            return False
    return True


class Attempts:
    """Where `TokenBuckets` writes the outcome of requests first .. first + n - 1 (positions in
    submission order): the time of the last attempt, the attempts made, and whether it failed."""

    def __init__(self, first: int, n: int):
        self.first = first
        self.send = np.empty(n)
        self.attempts = np.zeros(n, dtype=np.int64)
        self.failed = np.zeros(n, dtype=bool)


class TokenBuckets:
    """Token buckets for requests and tokens per minute: capacity one minute's worth, refilled
    continuously, full at t = 0. A request needs one request token and prompt + output tokens
    (providers count the requested max_tokens; the actual output is the closest we know).
    Throttled requests retry after a full-jitter backoff U(0, min(max, base * 2^k)); after
    `max_retries` retries they fail. A request larger than the token bucket always fails.

    Fed the submissions in time order, all at once (`ApiFleet.run`) or piece by piece (the
    streaming path, sim/engine/streaming.py): the state (bucket levels, retries due later)
    carries over, so the pieces give the same attempts, in the same order, as the whole."""

    def __init__(self, cfg: ApiFleetConfig, jitter_rng: np.random.Generator):
        inf = math.inf
        self.cap_r = cfg.rpm_limit if cfg.rpm_limit is not None else inf
        self.cap_t = cfg.tpm_limit if cfg.tpm_limit is not None else inf
        self.level_r, self.level_t = self.cap_r, self.cap_t
        self.last = 0.0
        # (time, request position, retries so far, tokens it needs), earliest first
        self.retries: list[tuple[float, int, int, int]] = []
        self.uniform = jitter_rng.uniform
        self.backoff = (cfg.backoff_base_s, cfg.backoff_max_s, cfg.max_retries)
        self.throttles: list[float] = []  # times of throttled attempts (the caller may clear it)
        self.retried = 0  # throttled requests sent again after a backoff

    def feed(self, t_list: list, tok_list: list, outs: list[Attempts], until: float) -> None:
        """Submissions at `t_list` (sorted, none before an earlier piece's) needing `tok_list`
        tokens, positions `outs[-1].first` on; then every retry due before `until` (the next
        piece's first submission; inf for the last). `outs` holds the pieces with requests not
        settled yet, in position order, the new one last: outcomes are written there."""
        cap_r, cap_t = self.cap_r, self.cap_t
        rate_r, rate_t = cap_r / 60.0, cap_t / 60.0
        level_r, level_t, last = self.level_r, self.level_t, self.last
        retries, throttles, uniform = self.retries, self.throttles, self.uniform
        base, cap_backoff, max_retries = self.backoff
        cur = outs[-1]
        first = cur.first
        firsts = [o.first for o in outs]
        n = len(t_list)
        nxt = 0
        while True:
            if retries and retries[0][0] < (t_list[nxt] if nxt < n else until):
                t, j, k, need = heapq.heappop(retries)
            elif nxt < n:
                t, j, k, need = t_list[nxt], first + nxt, 0, tok_list[nxt]
                nxt += 1
            else:
                break
            if t > last:
                if level_r < cap_r:
                    level_r = min(cap_r, level_r + (t - last) * rate_r)
                if level_t < cap_t:
                    level_t = min(cap_t, level_t + (t - last) * rate_t)
                last = t
            ok = level_r >= 1 - _EPS and level_t >= need - _EPS
            if not ok:
                throttles.append(t)
                if k < max_retries:
                    delay = uniform(
                        0.0, min(cap_backoff, base * 2.0 ** min(k, 64))
                    )  # 2^64 s is past any cap
                    heapq.heappush(retries, (t + delay, j, k + 1, need))
                    self.retried += 1
                    continue
            else:
                level_r -= 1
                level_t -= need
            o = cur if j >= first else outs[bisect_right(firsts, j) - 1]  # an earlier piece's
            p = j - o.first
            o.send[p] = t
            o.attempts[p] = k + 1
            if not ok:
                o.failed[p] = True
        self.level_r, self.level_t, self.last = level_r, level_t, last

    def next_retry_s(self) -> float:
        """When the earliest retry not yet sent is due (inf: none)."""
        return self.retries[0][0] if self.retries else math.inf

    def pending_positions(self) -> list[int]:
        """Positions of the requests waiting to retry."""
        return [entry[1] for entry in self.retries]


class TierLedger:
    """Volume tiers: a completed request's token price times its tier's factor, the tier chosen
    by the tokens already billed that month (months of MONTH_S from t = 0), in order of
    completion. Fed completions in that order, all at once or in pieces (the month's running
    total carries over): the same factors either way, as token counts add exactly in float64."""

    def __init__(self, tiers):
        self.above = np.array([tier.above_mtok for tier in tiers]) * 1e6
        self.table = np.concatenate([[1.0], [tier.factor for tier in tiers]])
        self.month = -1.0  # the month of the last completion fed
        self.billed = 0.0  # tokens billed in that month so far

    def factors(self, finish: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Factors of completions at `finish` (in completion order, after every earlier one
        fed) of `tokens` tokens each."""
        if not len(finish):
            return np.ones(0)
        tok = np.asarray(tokens, dtype=np.float64)
        month = np.floor(finish / MONTH_S)
        cum = np.cumsum(tok)
        month_start = np.searchsorted(month, month, side="left")
        before = cum - tok - np.where(month_start > 0, cum[month_start - 1], 0.0)
        carried = month == self.month  # the leading completions of the month fed last
        before = np.where(carried, before + self.billed, before)
        last = month[-1]
        start = int(month_start[-1])
        billed = cum[-1] - (cum[start - 1] if start > 0 else 0.0)
        self.billed = billed + (self.billed if last == self.month else 0.0)
        self.month = float(last)
        return self.table[np.searchsorted(self.above, before, side="right")]
