"""A faster decode-only step time for jumps: the same floats as `profile.step_time_s` for a batch
of decoding sequences, with the per-batch-size parts of the formula cached.

It mirrors `sim.perf.ServingProfile.step_time_s` term by term, and is used only when it reproduces
that method exactly on a set of sample points; any other profile (or a changed formula) gets the
profile's own method.
"""

from __future__ import annotations

from collections.abc import Callable

_CHECK_BATCHES = (1, 2, 3, 7, 31, 64, 255, 256, 1000)
_CHECK_CTX = (0, 1, 999, 4096, 123_457, 2_000_000, 50_000_000)


def decode_step_time(profile) -> Callable[[int, int], float]:
    """f(decode_seqs, decode_ctx_tokens) == profile.step_time_s(0, 0.0, decode_seqs, ctx)."""
    step_time = profile.step_time_s

    def generic(n: int, ctx: int) -> float:
        return step_time(0, 0.0, n, ctx)

    try:
        fast = _mirror(profile)
        same = all(
            fast(n, ctx) == step_time(0, 0.0, n, ctx) for n in _CHECK_BATCHES for ctx in _CHECK_CTX
        )
    except (AttributeError, TypeError, ArithmeticError):
        return generic
    return fast if same else generic


def _mirror(p) -> Callable[[int, int], float]:
    dense, routed, miss = p._dense_read_bytes, p._routed_read_bytes, p._moe_miss
    kv_read, inv_bw = p._kv_read_per_token, p._inv_bw
    linear, lm_head = p._linear_flops_per_token, p._lm_head_flops
    attn, inv_flops = p._attn_flops_per_pair, p._inv_flops
    allreduces, ar_fixed, ar_per_token = (
        p._allreduces,
        p._allreduce_fixed_s,
        p._allreduce_s_per_token,
    )
    overhead, per_seq = p._step_overhead_s, p._per_seq_overhead_s
    cache: dict[int, tuple[float, float, float, float]] = {}

    def per_batch(n: int) -> tuple[float, float, float, float]:
        weight_bytes = dense + routed * (1.0 - miss**n)
        flops_fixed = linear * n + lm_head * n
        ar = allreduces * (ar_fixed + ar_per_token * n) if allreduces else 0.0
        cache[n] = c = (weight_bytes, flops_fixed, per_seq * n, ar)
        return c

    def fast(n: int, ctx: int) -> float:
        c = cache.get(n) or per_batch(n)
        mem_s = (c[0] + kv_read * ctx) * inv_bw
        compute_s = (c[1] + attn * (0.0 + ctx)) * inv_flops
        step_s = (mem_s if mem_s > compute_s else compute_s) + overhead
        step_s += c[2]
        if allreduces:
            step_s += c[3]
        return step_s

    return fast
