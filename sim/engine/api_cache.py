"""Prompt caching as API providers bill it: which prompt prefixes are warm at each request, from
the rules of sim/data/prompt_caching.toml (minimum prefix, increments, idle lifetime refreshed
on use, cache writes), so cached-input and cache-write tokens follow the traffic in time.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

import numpy as np

from sim.engine.prefix import PrefixKeys, hit_tokens

RULES_FILE = "data/prompt_caching.toml"


@dataclass(frozen=True)
class CacheRules:
    """One provider's prompt-caching rules (see the data file's header for each field)."""

    provider: str
    mode: str  # "automatic" | "explicit"
    min_prefix_tokens: int
    increment_tokens: int
    ttl_s: float
    write_multiplier: float | None  # cache-write price / input price, None = writes are free
    source_url: str
    checked: str
    from_memory: tuple[str, ...]

    def provenance(self) -> dict:
        return {
            "rules_provider": self.provider,
            "mode": self.mode,
            "min_prefix_tokens": self.min_prefix_tokens,
            "increment_tokens": self.increment_tokens,
            "ttl_s": self.ttl_s,
            "write_multiplier": self.write_multiplier,
            "source_url": self.source_url,
            "checked": self.checked,
            "from_memory": list(self.from_memory),
        }


@functools.cache
def _table() -> dict[str, dict]:
    text = resources.files("sim").joinpath(RULES_FILE).read_text(encoding="utf-8")
    return {row["provider"]: row for row in tomllib.loads(text)["provider"]}


def known_providers() -> list[str]:
    return sorted(_table())


def rules_for(provider: str, model: str = "", ttl_s: float | None = None) -> CacheRules:
    """The rules of `provider` for `model` (its minimum may depend on the model) with the idle
    lifetime `ttl_s` (None = the provider's default). ValueError when unknown."""
    row = _table().get(provider)
    if row is None:
        raise ValueError(
            f"no prompt-caching rules for provider {provider!r} in sim/{RULES_FILE} (known: "
            f"{', '.join(known_providers())}); set prompt_cache_rules to one of them"
        )
    minimum = int(row["min_prefix_tokens"])
    for pattern, value in row.get("min_by_model", {}).items():
        if pattern in model:
            minimum = int(value)
            break
    ttl = float(row["ttl_s"]) if ttl_s is None else float(ttl_s)
    options = [float(x) for x in row.get("ttl_options_s", [row["ttl_s"]])]
    if ttl not in options:
        raise ValueError(
            f"prompt_cache_ttl_s: {provider} offers lifetimes of {options} s, got {ttl:g}"
        )
    multipliers = row.get("write_multiplier")
    write = float(multipliers[str(int(ttl))]) if multipliers else None
    return CacheRules(
        provider=provider,
        mode=row["mode"],
        min_prefix_tokens=minimum,
        increment_tokens=int(row.get("increment_tokens", 1)),
        ttl_s=ttl,
        write_multiplier=write,
        source_url=row["source_url"],
        checked=row["checked"],
        from_memory=tuple(row.get("from_memory", ())),
    )


def warm_prefixes(
    rules: CacheRules,
    keys: PrefixKeys,
    idx: np.ndarray,
    send_s: np.ndarray,
    first_token_s: np.ndarray,
    prompt: np.ndarray,
    ok: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cached and cache-write prompt tokens of requests `idx` (sorted by `send_s`), from a cold
    provider cache: `WarmPrefixes.read` over their prefix keys."""
    return WarmPrefixes(rules, keys.unit_tokens).read(
        keys.lookup, idx, send_s, first_token_s, prompt, ok
    )


class WarmPrefixes:
    """A provider's prompt cache, fed requests in the order they are sent (all at once, or piece
    by piece on the streaming path: the state carries over).

    Each prefix block key has a time it became warm (the first token of the request that wrote
    it: the provider has computed it by then) and an expiry (last use + ttl). A request sent at
    t reads the longest leading run of its prompt's keys warm at t, if that covers at least the
    minimum prefix, in whole increments, and never the last prompt token; using a block
    refreshes its expiry. A prompt at or above the minimum writes the blocks it did not read
    (warm from its first token); with explicit caching it is billed for them as cache writes
    (the prompt tokens it did not read). Failed requests read and write nothing."""

    def __init__(self, rules: CacheRules, unit_tokens: int):
        self.rules = rules
        self.unit = unit_tokens
        self.warm_from: dict[int, float] = {}
        self.expiry: dict[int, float] = {}

    def read(self, lookup, idx, send_s, first_token_s, prompt, ok) -> tuple[np.ndarray, np.ndarray]:
        """Cached and cache-write prompt tokens of requests `idx` (sent at `send_s`, in send
        order, after every request fed before); `lookup(i)` gives request i's prefix keys."""
        n = len(idx)
        cached = np.zeros(n, dtype=np.int64)
        written = np.zeros(n, dtype=np.int64)
        warm_from, expiry = self.warm_from, self.expiry
        rules, unit = self.rules, self.unit
        ttl, minimum, step = rules.ttl_s, rules.min_prefix_tokens, rules.increment_tokens
        explicit = rules.mode == "explicit"
        for k, (i, t, first, p, good) in enumerate(
            zip(
                np.asarray(idx).tolist(),
                np.asarray(send_s).tolist(),
                np.asarray(first_token_s).tolist(),
                np.asarray(prompt).tolist(),
                np.asarray(ok).tolist(),
                strict=True,
            )  # fmt: skip
        ):
            if not good or p < minimum:
                continue
            keys = lookup(i)
            hits = 0
            for key in keys:
                if warm_from.get(key, np.inf) <= t <= expiry[key]:
                    hits += 1
                else:
                    break
            tokens = hit_tokens(hits, unit, p)
            tokens = tokens // step * step if tokens >= minimum else 0
            used = -(-tokens // unit)  # blocks read (the last may be partly read)
            for key in keys[:used]:
                expiry[key] = max(expiry[key], t + ttl)
            for key in keys[used:]:
                old = warm_from.get(key)
                if old is None or expiry[key] < t:  # never written, or expired: written anew
                    warm_from[key] = first
                    expiry[key] = first + ttl
                else:  # being written by another request in flight, or warm past a gap
                    warm_from[key] = min(old, first)
                    expiry[key] = max(expiry[key], first + ttl)
            cached[k] = tokens
            if explicit:
                written[k] = p - tokens
        return cached, written

    def forget_expired(self, before_s: float) -> None:
        """Drop keys expired before `before_s`, when no request is sent before it any more: a
        key expired at a request's send is treated exactly as one never written (`read`)."""
        gone = [key for key, end in self.expiry.items() if end < before_s]
        for key in gone:
            del self.expiry[key]
            self.warm_from.pop(key, None)
