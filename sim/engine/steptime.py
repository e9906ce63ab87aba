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
    fixed_gpu_s = p._fixed_gpu_s
    kv_read, kv_pad, inv_attn_bw = p._kv_read_per_token, p._kv_pad_tokens, p._inv_attn_bw
    overhead, per_seq, overlap = p._step_overhead_s, p._per_seq_overhead_s, p._cpu_overlap
    cache: dict[int, tuple[float, float, float]] = {}

    def per_batch(n: int) -> tuple[float, float, float]:
        # A decode-only step of n sequences: n tokens and n logit rows.
        cache[n] = c = (fixed_gpu_s(n, n), kv_pad * n, overhead + per_seq * n)
        return c

    def fast(n: int, ctx: int) -> float:
        c = cache.get(n) or per_batch(n)
        gpu_s = c[0] + (kv_read * (ctx + c[1])) * inv_attn_bw
        cpu_s = c[2]
        return gpu_s + cpu_s - overlap * (gpu_s if gpu_s < cpu_s else cpu_s)

    return fast
