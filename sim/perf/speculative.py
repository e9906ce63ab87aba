"""Speculative decoding as a serving profile: the wrapped profile's step time per *token* of each
decoding sequence, averaged over accepted drafts (docs/speculative.md).

A real step drafts k tokens per sequence (k draft-model steps, or k cheap MTP/EAGLE head passes),
then verifies them in one target step that processes k + 1 tokens per sequence, and a sequence
advances by E = (1 - a^(k+1)) / (1 - a) tokens on average when each proposal is accepted with
probability a given the earlier ones were (Leviathan et al. 2023, eq. 1). The engine keeps
advancing every sequence one token per step, so the wrapper gives each step 1/E of the real
step's decode work (the prefill work of a mixed step at its full cost): exact in expectation for
throughput and mean TPOT, without the per-sequence spread of accepted tokens.

Verification is costed as the same step with k extra query tokens per sequence, each attending
to its sequence's context: linear layers see (k + 1) tokens per sequence, so once the batch is
compute-bound the extra tokens cost real time and the speed-up shrinks, as measured in the
literature. Not counted: logits of the k extra positions beyond one row (the LM head is about 1.5%
of a 70B model's FLOPs).
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from sim.perf.profile import _kv_shards, build_profile

DATA = Path(__file__).resolve().parent / "data" / "speculative.toml"


@functools.cache
def default_acceptance() -> dict[str, dict]:
    """method -> {acceptance, source, published, from_memory, ...} (sim/perf/data/speculative.toml)."""
    with DATA.open("rb") as fh:
        return tomllib.load(fh)


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens a sequence advances per verification step: 1 + a + ... + a^k."""
    a = acceptance
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


class SpeculativeProfile:
    """A serving profile whose decode steps are speculative (see the module docstring).

    draft: the draft model's profile on the same GPUs (method "draft"), or None with
    `draft_cost_frac` (method "mtp": each proposal costs that fraction of a target decode step).
    Memory: a draft model's weights and its KV cache (one entry per token the target holds) come
    out of the target's KV cache, so `kv_capacity_tokens` shrinks accordingly.
    """

    def __init__(
        self,
        profile: Any,
        *,
        k: int,
        acceptance: float,
        draft: Any = None,
        draft_cost_frac: float | None = None,
    ):
        if (draft is None) == (draft_cost_frac is None):
            raise ValueError("speculative: give a draft profile or a draft_cost_frac, not both")
        if not 0.0 <= acceptance <= 1.0:
            raise ValueError(f"acceptance: must be in [0, 1], got {acceptance}")
        self._profile = profile
        self._k = int(k)
        self._acceptance = float(acceptance)
        self._e = expected_tokens(acceptance, k)
        self._draft = draft
        self._draft_frac = draft_cost_frac
        self.kv_capacity_tokens = profile.kv_capacity_tokens
        if draft is not None:
            self.kv_capacity_tokens = _capacity_with_draft(profile, draft)
        fit = getattr(profile, "fit_context_tokens", 0)
        self.fits = bool(getattr(profile, "fits", True)) and self.kv_capacity_tokens >= fit

    @property
    def tokens_per_step(self) -> float:
        return self._e

    def draft_s(self, decode_seqs: int, decode_ctx_tokens: int) -> float:
        """The k proposals of one step for `decode_seqs` sequences."""
        n, k = decode_seqs, self._k
        if self._draft is None:
            return k * self._draft_frac * self._profile.step_time_s(0, 0.0, n, decode_ctx_tokens)
        step = self._draft.step_time_s
        return sum(step(0, 0.0, n, decode_ctx_tokens + j * n) for j in range(k))

    def verify_s(
        self, prefill_tokens: int, prefill_attn_pairs: float, decode_seqs: int, ctx: int
    ) -> float:
        """One target step verifying k drafted tokens per decoding sequence."""
        n, k = decode_seqs, self._k
        extra_pairs = k * ctx + n * k * (k + 1) / 2.0
        return self._profile.step_time_s(
            prefill_tokens + n * k, prefill_attn_pairs + extra_pairs, n, ctx
        )

    def step_time_s(
        self,
        prefill_tokens: int = 0,
        prefill_attn_pairs: float = 0.0,
        decode_seqs: int = 0,
        decode_ctx_tokens: int = 0,
    ) -> float:
        if decode_seqs <= 0:
            return self._profile.step_time_s(prefill_tokens, prefill_attn_pairs, 0, 0)
        decode = self.verify_s(0, 0.0, decode_seqs, decode_ctx_tokens) + self.draft_s(
            decode_seqs, decode_ctx_tokens
        )
        if prefill_tokens <= 0:
            return decode / self._e
        full = self.verify_s(
            prefill_tokens, prefill_attn_pairs, decode_seqs, decode_ctx_tokens
        ) + self.draft_s(decode_seqs, decode_ctx_tokens)
        # The prefill chunk's marginal cost in full, the decode part per token advanced.
        return full - decode + decode / self._e

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the engine's exact fast paths read private terms: not these
            raise AttributeError(name)
        return getattr(self._profile, name)


def _capacity_with_draft(profile: Any, draft: Any) -> int:
    """Target KV tokens left when the draft's weights and per-token KV share each GPU's memory."""
    tp = profile.tp
    per_gpu_t = profile.kv_bytes_per_token / _kv_shards(profile.model, tp)
    per_gpu_d = draft.kv_bytes_per_token / _kv_shards(draft.model, tp)
    free = profile.kv_capacity_tokens * per_gpu_t - draft.weights_bytes_per_gpu
    block = max(1, int(getattr(profile, "kv_block_tokens", 1)))
    return max(0, int(free // (per_gpu_t + per_gpu_d)) // block * block)


def speculative_profile(
    profile: Any, spec, engine_profile: str | None = None
) -> SpeculativeProfile:
    """Wrap a built `ServingProfile` with the scenario's `engine.speculative` (SpeculativeConfig)."""
    acceptance = spec.acceptance
    if acceptance is None:
        acceptance = default_acceptance()[spec.method]["acceptance"]
    if spec.method == "draft":
        draft = build_profile(
            spec.draft_model,
            profile.gpu,
            tp=profile.tp,
            precision=profile.precision,
            mem_util=profile.mem_util,
            engine_profile=engine_profile,
        )
        return SpeculativeProfile(profile, k=spec.k, acceptance=acceptance, draft=draft)
    frac = spec.draft_cost_frac
    if frac is None:
        frac = 1.0 / profile.model.layers  # one extra decoder layer per proposal
    return SpeculativeProfile(profile, k=spec.k, acceptance=acceptance, draft_cost_frac=frac)
