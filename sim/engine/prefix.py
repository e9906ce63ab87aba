"""A replica's prefix cache: KV blocks keyed by prefix hash, shared by the sequences that use
them and kept, once idle, until running work needs the memory (LRU), as vLLM's automatic prefix
caching does. Pure bookkeeping, no SimPy: the replica calls it at admission and completion.

A key stands for a whole prefix (a hash chain, as Mooncake's `hash_ids` and vLLM's block hashes
are): a request hits the longest leading run of its keys that is resident. Every key holds
`unit_tokens` tokens (one KV block of the engine, or a coarser block of the trace: see
docs/prefix_cache.md) and counts as `blocks_per_unit` engine blocks in the eviction count.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class PrefixCache:
    """Resident prefix blocks: pinned (a running sequence uses them, refcount > 0) or idle
    (evictable, oldest first). Idle blocks take the KV memory running work leaves free: the
    replica calls `trim(room)` with that room whenever running work may have grown, so idle
    blocks are evicted before any running sequence is preempted."""

    def __init__(self, unit_tokens: int, blocks_per_unit: int = 1):
        if unit_tokens < 1 or blocks_per_unit < 1:
            raise ValueError("unit_tokens and blocks_per_unit must be at least 1")
        self.unit_tokens = unit_tokens
        self.blocks_per_unit = blocks_per_unit
        self.refs: dict[int, int] = {}  # resident key -> sequences using it (0 = idle)
        self.idle: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self.idle_tokens = 0
        self.evicted_blocks = 0

    def __len__(self) -> int:
        return len(self.refs)

    def match(self, keys) -> int:
        """How many leading keys are resident (no state change: a router may ask)."""
        refs = self.refs
        n = 0
        for key in keys:
            if key not in refs:
                break
            n += 1
        return n

    def pin(self, keys) -> None:
        """A sequence now uses these blocks (hit or newly computed): they cannot be evicted."""
        refs, idle, unit = self.refs, self.idle, self.unit_tokens
        for key in keys:
            count = refs.get(key)
            if count is None:
                refs[key] = 1
            else:
                if count == 0:
                    del idle[key]
                    self.idle_tokens -= unit
                refs[key] = count + 1

    def unpin(self, keys) -> None:
        """A sequence stopped using these blocks. Blocks nobody uses become idle, the last key
        first in eviction order (vLLM frees a sequence's blocks in reverse so the tail of a
        prefix goes before its head and what stays is still a prefix)."""
        refs, idle, unit = self.refs, self.idle, self.unit_tokens
        for key in reversed(keys):
            count = refs[key] - 1
            refs[key] = count
            if count == 0:
                idle[key] = None
                self.idle_tokens += unit

    def add_idle(self, keys) -> None:
        """Blocks a finished sequence computed that nobody has pinned (e.g. its output): cached
        idle, evicted before the prompt blocks it unpins after them."""
        refs, idle, unit = self.refs, self.idle, self.unit_tokens
        for key in reversed(keys):
            if key not in refs:
                refs[key] = 0
                idle[key] = None
                self.idle_tokens += unit

    def trim(self, room_tokens: int) -> None:
        """Evict idle blocks, least recently used first, until they fit in `room_tokens`."""
        if self.idle_tokens <= room_tokens:
            return
        refs, idle, unit = self.refs, self.idle, self.unit_tokens
        evicted = 0
        while self.idle_tokens > room_tokens and idle:
            key, _ = idle.popitem(last=False)
            del refs[key]
            self.idle_tokens -= unit
            evicted += 1
        self.evicted_blocks += evicted * self.blocks_per_unit


class PrefixKeys:
    """Per-request prefix keys as one flat int64 array with offsets, mapped to a fleet's cache
    block size.

    A workload carries `hash_ids` at `source_tokens` tokens per id (Mooncake: 512; the synthetic
    conversation generator and generic traces: what they were built with). With engine blocks of
    `block_tokens`:
    - the same size: keys are the ids;
    - engine blocks a multiple m of the source size: every m-th id (the id ending each engine
      block names the whole prefix up to it);
    - source blocks a multiple m of the engine's: the cache works in source-sized units of m
      engine blocks (the trace says nothing finer), counted as m blocks when evicted.
    `lookup(i)` are the keys a request may hit: those covering its prompt (ceil(prompt / unit));
    `keys(i)` every key it writes (its prompt, plus its output where the workload knows it).
    """

    def __init__(self, offsets, values, source_tokens: int, block_tokens: int, prompt_tokens):
        offsets = np.asarray(offsets, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64)
        self.unit_tokens, self.blocks_per_unit = cache_units(source_tokens, block_tokens)
        if block_tokens % source_tokens == 0:
            m = block_tokens // source_tokens
            if m > 1:
                lengths = np.diff(offsets) // m
                starts = np.repeat(offsets[:-1], lengths)
                rank = np.arange(int(lengths.sum())) - np.repeat(
                    np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths
                )
                values = values[starts + (rank + 1) * m - 1]
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.offsets = offsets.tolist()
        self.values = values
        prompt = np.asarray(prompt_tokens, dtype=np.int64)
        n_lookup = np.minimum(-(-prompt // self.unit_tokens), np.diff(offsets))
        self.n_lookup = n_lookup.tolist()

    def keys(self, i: int) -> list[int]:
        return self.values[self.offsets[i] : self.offsets[i + 1]].tolist()

    def lookup(self, i: int) -> list[int]:
        start = self.offsets[i]
        return self.values[start : start + self.n_lookup[i]].tolist()


def prefix_keys_of(
    hash_ids, source_tokens: int, block_tokens: int, prompt_tokens, who: str
) -> PrefixKeys:
    """`PrefixKeys` of a workload (or chunk) with `hash_ids`; a ValueError naming `who` (the
    fleet and option that need them) when the workload has no prefix identity."""
    if hash_ids is None:
        raise no_prefix_identity(who)
    return PrefixKeys(hash_ids[0], hash_ids[1], source_tokens, block_tokens, prompt_tokens)


def no_prefix_identity(who: str) -> ValueError:
    """The error for `who` (the fleet and option that need them) when the workload has no
    prefix identity."""
    return ValueError(
        f"{who} needs prefix identity in the workload (a Mooncake trace's hash_ids, "
        'generator = "conversations", or a trace\'s conversation column); '
        "docs/prefix_cache.md"
    )


def cache_units(source_tokens: int, block_tokens: int) -> tuple[int, int]:
    """(tokens per cache unit, engine blocks per unit) for a workload's prefix blocks of
    `source_tokens` and engine blocks of `block_tokens` (see `PrefixKeys`)."""
    if block_tokens % source_tokens == 0:
        return block_tokens, 1
    if source_tokens % block_tokens == 0:
        return source_tokens, source_tokens // block_tokens
    raise ValueError(
        f"engine.block_tokens = {block_tokens} and the workload's prefix blocks of "
        f"{source_tokens} tokens: one must be a multiple of the other"
    )


class SlotPrefixKeys:
    """`PrefixKeys` for the streaming path, whose request ids are reused slots: each slot is
    bound, when a request takes it, to the request's keys in its chunk's `PrefixKeys`."""

    def __init__(self, source_tokens: int, block_tokens: int):
        self.unit_tokens, self.blocks_per_unit = cache_units(source_tokens, block_tokens)
        self._bound: dict[int, tuple[PrefixKeys, int]] = {}

    def bind(self, slot: int, keys: PrefixKeys, i: int) -> None:
        self._bound[slot] = (keys, i)

    def keys(self, slot: int) -> list[int]:
        keys, i = self._bound[slot]
        return keys.keys(i)

    def lookup(self, slot: int) -> list[int]:
        keys, i = self._bound[slot]
        return keys.lookup(i)


def hit_tokens(hits: int, unit_tokens: int, prompt: int) -> int:
    """Prompt tokens a hit of `hits` leading blocks saves: the last prompt token is always
    computed (it samples the first output token), as in vLLM."""
    return max(min(hits * unit_tokens, prompt - 1), 0)


def prefill_saved_s(step_time, prompt: int, hit: int) -> float:
    """Prefill seconds a hit of `hit` tokens avoids, from the step model `step_time(prefill
    tokens, attention pairs, decode seqs, decode context)`: the whole prompt as one step less
    its uncached rest (attending to the cached part) as one step."""
    if not hit:
        return 0.0
    rest = prompt - hit
    full = step_time(prompt, prompt * (prompt + 1) / 2, 0, 0)
    return full - step_time(rest, rest * (hit + (rest + 1) / 2), 0, 0)


class CacheStats:
    """A GPU fleet's prefix-cache figures, counted at each request's first admission (a request
    readmitted after a preemption is not counted again)."""

    def __init__(self):
        self.requests = 0
        self.hit_requests = 0  # at least one block hit
        self.prompt_tokens = 0
        self.hit_tokens = 0
        self.saved_prefill_s = 0.0

    def admitted(self, prompt: int, hit: int, saved_s: float) -> None:
        self.requests += 1
        self.prompt_tokens += prompt
        if hit:
            self.hit_requests += 1
            self.hit_tokens += hit
            self.saved_prefill_s += saved_s

    def to_meta(self, evicted_blocks: int, gpus_per_replica: int) -> dict:
        """The figures FleetResult.meta["prefix_cache"] carries (rates in [0, 1], NaN with no
        request admitted); GPU time saved is the prefill seconds avoided times the GPUs of a
        replica, which all run every step."""
        nan = float("nan")
        return {
            "requests": self.requests,
            "hit_requests": self.hit_requests,
            "prompt_tokens": self.prompt_tokens,
            "hit_tokens": self.hit_tokens,
            "hit_rate_tokens": self.hit_tokens / self.prompt_tokens if self.prompt_tokens else nan,
            "hit_rate_requests": self.hit_requests / self.requests if self.requests else nan,
            "evicted_blocks": evicted_blocks,
            "prefill_s_saved": self.saved_prefill_s,
            "gpu_s_saved": self.saved_prefill_s * gpus_per_replica,
        }
