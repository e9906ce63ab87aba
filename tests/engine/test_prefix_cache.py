"""The prefix cache data structure (sim/engine/prefix.py) and prefix keys, with answers worked
out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.prefix import PrefixCache, PrefixKeys, hit_tokens
from sim.traffic.conversations import conversation_hash_ids


def test_lru_evicts_idle_blocks_oldest_first_and_a_chain_from_its_tail():
    pc = PrefixCache(unit_tokens=16)
    pc.pin([1, 2, 3])
    pc.unpin([1, 2, 3])  # idle, the tail first in eviction order: 3, 2, 1
    pc.pin([7])
    pc.unpin([7])  # idle after them: 3, 2, 1, 7
    assert pc.idle_tokens == 64
    pc.trim(32)  # room for two blocks: 3 and 2 go
    assert pc.evicted_blocks == 2
    assert pc.match([1, 2, 3]) == 1  # what stays of the chain is still a prefix
    assert pc.match([7]) == 1


def test_pinned_blocks_are_never_evicted_and_hits_refresh_recency():
    pc = PrefixCache(unit_tokens=10)
    pc.pin([1, 2])
    pc.unpin([1, 2])
    pc.pin([3])  # running: pinned
    pc.pin([1])  # a hit on 1: no longer idle
    pc.trim(0)
    assert pc.evicted_blocks == 1  # only 2 was idle
    assert pc.match([1]) == 1 and pc.match([3]) == 1 and pc.match([2]) == 0
    pc.unpin([1])
    pc.unpin([3])  # idle now: 1, then 3
    pc.trim(10)
    assert pc.match([1]) == 0 and pc.match([3]) == 1


def test_blocks_shared_by_two_sequences_turn_idle_when_both_leave():
    pc = PrefixCache(unit_tokens=16)
    pc.pin([1, 2])
    pc.pin([1, 2, 3])
    pc.unpin([1, 2, 3])
    assert pc.idle_tokens == 16  # 3 only: 1 and 2 are still used
    pc.unpin([1, 2])
    assert pc.idle_tokens == 48


def test_evictions_of_coarse_units_count_engine_blocks():
    pc = PrefixCache(unit_tokens=512, blocks_per_unit=32)
    pc.add_idle([5])
    pc.trim(0)
    assert pc.evicted_blocks == 32


def test_hit_tokens_never_cover_the_last_prompt_token():
    assert hit_tokens(4, 16, 64) == 63
    assert hit_tokens(4, 16, 100) == 64
    assert hit_tokens(0, 16, 1) == 0


def test_prefix_keys_map_trace_blocks_to_engine_blocks():
    offsets, values = np.array([0, 4]), np.array([10, 11, 12, 13])
    same = PrefixKeys(offsets, values, 16, 16, [64])
    assert same.keys(0) == [10, 11, 12, 13] and same.unit_tokens == 16
    # Engine blocks of 32 over ids of 16 tokens: the id ending each 32-token block.
    coarse = PrefixKeys(offsets, values, 16, 32, [64])
    assert coarse.keys(0) == [11, 13] and coarse.unit_tokens == 32
    # Mooncake's 512-token ids under 16-token engine blocks: units of 512 (32 blocks).
    fine = PrefixKeys(offsets, values, 512, 16, [2000])
    assert fine.unit_tokens == 512 and fine.blocks_per_unit == 32
    assert fine.lookup(0) == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="multiple"):
        PrefixKeys(offsets, values, 16, 24, [64])


def test_lookup_keys_cover_the_prompt_only():
    # Prompt 40 and output 30 tokens at 16 per block: 4 full blocks, 3 cover the prompt.
    keys = PrefixKeys([0, 4], [1, 2, 3, 4], 16, 16, [40])
    assert keys.lookup(0) == [1, 2, 3]
    assert keys.keys(0) == [1, 2, 3, 4]


def test_conversation_chains_extend_and_share_the_system_prompt():
    # Two conversations (a, b), block 16, a 32-token system prompt (2 shared blocks).
    conv = np.array([0, 1, 0])
    prompt = np.array([40, 50, 40 + 30 + 20])  # turn 2 of a = turn 1 + its output + 20 new
    output = np.array([30, 10, 5])
    offsets, values = conversation_hash_ids(conv, prompt, output, 16, system_tokens=32)
    rows = [values[offsets[i] : offsets[i + 1]].tolist() for i in range(3)]
    assert rows[0][:2] == rows[1][:2] == [0, 1]  # the shared system prompt
    assert rows[0][2] != rows[1][2]  # then each conversation's own blocks
    assert rows[2][: len(rows[0])] == rows[0]  # turn 2 repeats turn 1's prompt + output
    assert len(rows[2]) == (90 + 5) // 16
    # A turn shorter than its context starts a new chain (the history was cut).
    offsets, values = conversation_hash_ids(np.array([0, 0]), np.array([64, 32]), np.array([32, 1]), 16)  # fmt: skip
    assert values[offsets[1]] != values[0]
