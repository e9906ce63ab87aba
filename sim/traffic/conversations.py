"""Multi-turn conversations: each turn's prompt is the previous prompt plus the previous output
plus new user tokens, so every turn repeats the context before it as a prefix. Gives the
prefix identity (block hash ids) a per-replica prefix cache needs, from a generator or from a
trace's conversation column.

Block ids form hash chains as in vLLM and Mooncake: the id of a full block of `block_tokens`
tokens names the whole context up to it, so two requests share a block id exactly when they
share everything before it. A conversation's context only grows, so its chain is the shared
system-prompt blocks followed by ids of its own; a turn's request carries the ids of every full
block of its prompt plus output (the output's blocks are what the next turn reuses).
"""

from __future__ import annotations

import numpy as np

from sim.traffic import limits
from sim.traffic.loaders import prefix_cache_hits
from sim.workload import Workload

# Block ids of a trace's conversation column are written at vLLM's default KV block size.
CONVERSATION_BLOCK_TOKENS = 16


def conversation_hash_ids(
    conversation: np.ndarray,
    prompt: np.ndarray,
    output: np.ndarray,
    block_tokens: int,
    system_tokens: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Ragged (offsets, values) block ids, one row per request (each conversation's turns in
    time order). A turn whose prompt is shorter than the context before it (the client cut or
    reset the history) starts a new chain. The first `system_tokens // block_tokens` blocks of
    every chain are ids shared by all conversations (a common system prompt)."""
    n = len(prompt)
    system_blocks = system_tokens // block_tokens
    # Own block k of chain j is id system_blocks + j * stride + k: unique, and a chain's ids
    # are contiguous however conversations interleave.
    stride = limits.MAX_TOKENS_PER_REQUEST // block_tokens + 1
    chains: dict = {}  # conversation -> (chain number, context tokens so far)
    chain_of = np.empty(n, dtype=np.int64)
    n_chains = 0
    for i, (c, p, o) in enumerate(
        zip(conversation.tolist(), prompt.tolist(), output.tolist(), strict=True)
    ):
        chain, context = chains.get(c, (-1, 0))
        if chain < 0 or p < context:
            chain, n_chains = n_chains, n_chains + 1
        chains[c] = (chain, p + o)
        chain_of[i] = chain
    lengths = (np.asarray(prompt, np.int64) + np.asarray(output, np.int64)) // block_tokens
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    pos = np.arange(int(offsets[-1]), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    own = np.repeat(system_blocks + chain_of * stride, lengths) + pos - system_blocks
    values = np.where(pos < system_blocks, pos, own)
    return offsets, values


def conversations(
    rate_per_s: float,
    duration_s: float,
    rng: np.random.Generator,
    *,
    turns,
    first_prompt,
    user_tokens,
    output,
    think_time_s: float,
    system_tokens: int = 0,
    block_tokens: int = 16,
    max_context_tokens: int = 32_768,
) -> Workload:
    """Conversations start as a Poisson process at `rate_per_s` over [0, duration_s); each has
    a number of turns drawn from `turns`. Turn 1's prompt is `system_tokens` plus a draw of
    `first_prompt`; turn k + 1's prompt is turn k's prompt + output + a draw of `user_tokens`,
    and arrives an Exponential(`think_time_s`) gap after turn k's arrival (open loop: the gap
    should exceed a turn's response time, or the next turn arrives before its context exists).
    A conversation ends early when the next turn's prompt plus output would pass
    `max_context_tokens`. Length models have `draw(n, rng)` (LognormalLengths). Turns arriving
    after `duration_s` are kept: a conversation runs to its end."""
    if not (rate_per_s > 0 and duration_s > 0 and think_time_s >= 0):
        raise ValueError("conversations need rate_per_s > 0, duration_s > 0, think_time_s >= 0")
    limits.check_span(duration_s, "conversations duration_s")
    limits.check_requests(rate_per_s * duration_s, "conversations", limits.MAX_REQUESTS)
    starts = np.sort(rng.uniform(0.0, duration_s, rng.poisson(rate_per_s * duration_s)))
    n_turns = turns.draw(len(starts), rng)
    limits.check_requests(float(n_turns.sum()), "conversations (turns)", limits.MAX_REQUESTS)
    conv, arrival, prompt, out = [], [], [], []
    for c, (t, k) in enumerate(zip(starts.tolist(), n_turns.tolist(), strict=True)):
        users = np.concatenate([first_prompt.draw(1, rng), user_tokens.draw(k - 1, rng)])
        outs = output.draw(k, rng)
        gaps = rng.exponential(think_time_s, k - 1) if think_time_s > 0 else np.zeros(k - 1)
        context = system_tokens
        for j in range(k):
            p = context + int(users[j])
            o = int(outs[j])
            if p + o > max_context_tokens:
                break
            conv.append(c)
            arrival.append(t)
            prompt.append(p)
            out.append(o)
            context = p + o
            if j < k - 1:
                t += float(gaps[j])
    arrival_s = np.asarray(arrival, dtype=np.float64)
    order = np.argsort(arrival_s, kind="stable")
    conv_ids = np.asarray(conv, dtype=np.int64)[order]
    prompt_tokens = np.asarray(prompt, dtype=np.int64)[order]
    output_tokens = np.asarray(out, dtype=np.int64)[order]
    offsets, values = conversation_hash_ids(
        conv_ids, prompt_tokens, output_tokens, block_tokens, system_tokens
    )
    meta = {
        "generator": "conversations",
        "rate_per_s": rate_per_s,
        "duration_s": duration_s,
        "conversations": len(starts),
        "think_time_s": think_time_s,
        "system_prompt_tokens": system_tokens,
        "hash_ids": (offsets, values),
        "hash_block_tokens": block_tokens,
    }
    cached = prefix_cache_hits(offsets, values, prompt_tokens, block_tokens)
    name = f"conversations(rate={rate_per_s:g}/s, think={think_time_s:g}s)"
    return Workload(arrival_s[order], prompt_tokens, output_tokens, cached, name, meta)
