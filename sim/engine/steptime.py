"""The replica's step times: the same floats as `profile.step_time_s`, faster.

`StepTimes` mirrors `sim.perf.ServingProfile.step_time_s` term by term with the profile's
coefficients copied into it: `step` for any step, `decode` for a decode-only step of n sequences
(its per-batch-size parts cached, for jumps). `step_times(profile)` uses it only where it
reproduces the profile's method exactly on a grid of sample points; any other profile (a test's
stand-in, a wrapper, a changed formula) gets `ProfileStepTimes`, the profile's own method behind
the same two methods. Like replica.py, this file is also compiled (setup.py, typed by
steptime.pxd; sim/engine/native.py picks the build), and the compiled replica calls `step` and
`decode` as C functions.
"""

from __future__ import annotations

from array import array

_CHECK_BATCHES = (1, 2, 3, 7, 31, 64, 255, 256, 1000)
_CHECK_CTX = (0, 1, 999, 4096, 123_457, 2_000_000, 50_000_000)
_CHECK_PREFILL = (1, 17, 512, 2048, 8192, 20_000)
_CHECK_PAIRS = (0.0, 1.0, 1.5e5, 3.3e7, 2.1e9)


class StepTimes:
    """`profile.step_time_s` (ServingProfile's formula, docs/calibration.md) as plain arithmetic
    on copied coefficients."""

    def __init__(self, p):
        self.dense_read_bytes = p._dense_read_bytes
        self.routed_read_bytes = p._routed_read_bytes
        self.moe_miss = p._moe_miss
        self.inv_gemm_bw = p._inv_gemm_bw
        self.linear_flops_per_token = p._linear_flops_per_token
        self.lm_head_flops = p._lm_head_flops
        self.inv_gemm_flops = p._inv_gemm_flops
        self.kv_read_per_token = p._kv_read_per_token
        self.kv_pad_tokens = p._kv_pad_tokens
        self.inv_attn_bw = p._inv_attn_bw
        self.attn_s_per_pair = p._attn_s_per_pair
        self.allreduces = p._allreduces
        self.ar_bytes_per_token = p._ar_bytes_per_token
        self.ar_small_max_bytes = p._ar_small_max_bytes
        self.ar_small_s = p._ar_small_s
        self.ar_large_s = p._ar_large_s
        self.ar_s_per_byte = p._ar_s_per_byte
        self.graph_max_tokens = p._graph_max_tokens
        self.graph_decode_only = p._graph_decode_only
        self.eager_launch_s = p._eager_launch_s
        self.step_overhead_s = p._step_overhead_s
        self.per_seq_overhead_s = p._per_seq_overhead_s
        self.cpu_overlap = p._cpu_overlap
        self.clear_decode()

    def fixed_gpu_s(self, tokens, logit_rows):
        weight_bytes = self.dense_read_bytes
        if self.routed_read_bytes:
            weight_bytes += self.routed_read_bytes * (1.0 - self.moe_miss**tokens)
        read_s = weight_bytes * self.inv_gemm_bw
        flop_s = (
            self.linear_flops_per_token * tokens + self.lm_head_flops * logit_rows
        ) * self.inv_gemm_flops
        gpu_s = read_s if read_s > flop_s else flop_s
        if self.allreduces:
            msg = self.ar_bytes_per_token * tokens
            latency = self.ar_small_s if msg <= self.ar_small_max_bytes else self.ar_large_s
            gpu_s += self.allreduces * (latency + msg * self.ar_s_per_byte)
        if tokens > self.graph_max_tokens:
            gpu_s += self.eager_launch_s
        return gpu_s

    def step(self, prefill_tokens, prefill_attn_pairs, decode_seqs, decode_ctx_tokens):
        tokens = prefill_tokens + decode_seqs
        if tokens <= 0:
            return 0.0
        gpu_s = self.fixed_gpu_s(tokens, decode_seqs + (1 if prefill_tokens > 0 else 0))
        if prefill_tokens > 0 and self.graph_decode_only:
            gpu_s += self.eager_launch_s if tokens <= self.graph_max_tokens else 0.0
        gpu_s += (
            self.kv_read_per_token * (decode_ctx_tokens + self.kv_pad_tokens * decode_seqs)
        ) * self.inv_attn_bw
        if prefill_attn_pairs > 0.0:
            gpu_s += self.attn_s_per_pair * prefill_attn_pairs
        cpu_s = self.step_overhead_s + self.per_seq_overhead_s * decode_seqs
        return gpu_s + cpu_s - self.cpu_overlap * (gpu_s if gpu_s < cpu_s else cpu_s)

    def clear_decode(self) -> None:
        """Forget the per-batch-size parts of decode steps: `decode` works them out again."""
        # By batch size n, where _dc_known[n]: a decode-only step's fixed GPU seconds, KV
        # padding tokens and CPU seconds (flat arrays: C reads in the compiled build).
        self._dc_n = 0
        self._dc_fixed = array("d")
        self._dc_pad = array("d")
        self._dc_cpu = array("d")
        self._dc_known = bytearray()

    def _grow_decode(self, n) -> None:
        """Room in the decode caches for batch sizes up to n (at least doubled)."""
        size = max(2 * self._dc_n, n + 1, 64)
        more = size - self._dc_n
        fixed, pad, cpu = (
            array("d", self._dc_fixed),
            array("d", self._dc_pad),
            array("d", self._dc_cpu),
        )
        fixed.extend([0.0] * more)
        pad.extend([0.0] * more)
        cpu.extend([0.0] * more)
        self._dc_fixed, self._dc_pad, self._dc_cpu = fixed, pad, cpu
        self._dc_known = bytearray(self._dc_known) + bytearray(more)
        self._dc_n = size

    def decode(self, n, ctx):
        if n >= self._dc_n:
            self._grow_decode(n)
        if not self._dc_known[n]:
            # A decode-only step of n sequences: n tokens and n logit rows.
            self._dc_fixed[n] = self.fixed_gpu_s(n, n)
            self._dc_pad[n] = self.kv_pad_tokens * n
            self._dc_cpu[n] = self.step_overhead_s + self.per_seq_overhead_s * n
            self._dc_known[n] = 1
        gpu_s = (
            self._dc_fixed[n]
            + (self.kv_read_per_token * (ctx + self._dc_pad[n])) * self.inv_attn_bw
        )
        cpu_s = self._dc_cpu[n]
        return gpu_s + cpu_s - self.cpu_overlap * (gpu_s if gpu_s < cpu_s else cpu_s)


class ProfileStepTimes(StepTimes):
    """Any other profile's step times: its own `step_time_s`, behind StepTimes's methods."""

    def __init__(self, profile):
        self.step_time_s = profile.step_time_s

    def step(self, prefill_tokens, prefill_attn_pairs, decode_seqs, decode_ctx_tokens):
        return self.step_time_s(prefill_tokens, prefill_attn_pairs, decode_seqs, decode_ctx_tokens)

    def decode(self, n, ctx):
        return self.step_time_s(0, 0.0, n, ctx)


# Whether the mirror reproduced a profile on the sample points, by profile (profiles are frozen
# dataclasses, equal by value): replications, sweeps and the fleets of one scenario check a
# profile once, not once per fleet built (1,114 calls of its step_time_s). Bounded: cleared when
# full.
_checked: dict = {}
_CHECKED_MAX = 256


def step_times(profile) -> StepTimes:
    """`profile`'s step times: st.step(prefill_tokens, prefill_attn_pairs, decode_seqs,
    decode_ctx_tokens) == profile.step_time_s(...) and st.decode(n, ctx) ==
    profile.step_time_s(0, 0.0, n, ctx); the mirror where it is exact, else the profile's own."""
    try:
        known = _checked.get(profile)
    except TypeError:  # not hashable: checked every time
        known = None
    if known is not None:
        return StepTimes(profile) if known else ProfileStepTimes(profile)
    fast = _check(profile)
    try:
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[profile] = not isinstance(fast, ProfileStepTimes)
    except TypeError:
        pass
    return fast


def _check(profile) -> StepTimes:
    """The mirror of `profile` if it gives the profile's floats on the sample points, else the
    profile's own method."""
    step_time = profile.step_time_s
    try:
        fast = StepTimes(profile)
        same = all(
            fast.decode(n, ctx) == step_time(0, 0.0, n, ctx)
            for n in _CHECK_BATCHES
            for ctx in _CHECK_CTX
        ) and all(
            fast.step(p, pairs, n, ctx) == step_time(p, pairs, n, ctx)
            for p in _CHECK_PREFILL
            for pairs in _CHECK_PAIRS
            for n in (0, *_CHECK_BATCHES[:6])
            for ctx in _CHECK_CTX[:5]
        )
    except (AttributeError, TypeError, ArithmeticError, OverflowError):
        return ProfileStepTimes(profile)
    if not same:
        return ProfileStepTimes(profile)
    fast.clear_decode()
    return fast
