"""Token-length models for synthetic traffic: a fitted lognormal, or pairs resampled from a trace.

A length model has `sample(n, rng) -> (prompt_tokens, output_tokens)`, both int64 arrays >= 1.
"""

from __future__ import annotations

import math

import numpy as np

from sim.traffic.limits import MAX_LOGNORMAL_SIGMA, MAX_TOKENS_PER_REQUEST


class LognormalLengths:
    """One token count: round(median * exp(sigma * Z)), clipped to [1, max_tokens]."""

    def __init__(self, median: float, sigma: float, max_tokens: int):
        top = MAX_TOKENS_PER_REQUEST
        if not 1 <= median <= top:
            raise ValueError(f"Lognormal median must be 1 to {top:,} tokens, got {median:g}")
        if not 0 <= sigma <= MAX_LOGNORMAL_SIGMA:
            raise ValueError(f"Lognormal sigma must be 0 to {MAX_LOGNORMAL_SIGMA:g}, got {sigma:g}")
        if not 1 <= max_tokens <= top:
            raise ValueError(f"Lognormal max_tokens must be 1 to {top:,}, got {max_tokens:g}")
        self.median = float(median)
        self.sigma = float(sigma)
        self.max_tokens = int(max_tokens)

    @classmethod
    def fit(cls, tokens) -> LognormalLengths:
        """Maximum-likelihood fit on log tokens; the cap is the largest observed value."""
        logs = np.log(np.asarray(tokens, dtype=np.float64))
        if len(logs) == 0:
            raise ValueError("Cannot fit a lognormal to zero samples")
        return cls(math.exp(float(logs.mean())), float(logs.std()), int(np.max(tokens)))

    @property
    def mean(self) -> float:
        """Mean before rounding and clipping."""
        return self.median * math.exp(self.sigma**2 / 2)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        values = np.rint(self.median * np.exp(self.sigma * rng.standard_normal(n)))
        return np.clip(values, 1, self.max_tokens).astype(np.int64)

    def __repr__(self) -> str:
        return f"Lognormal(median={self.median:g}, sigma={self.sigma:g}, max={self.max_tokens})"


class IndependentLengths:
    """Prompt and output lengths drawn independently (prompt first, then output)."""

    def __init__(self, prompt: LognormalLengths, output: LognormalLengths):
        self.prompt = prompt
        self.output = output

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.prompt.draw(n, rng), self.output.draw(n, rng)

    def __repr__(self) -> str:
        return f"prompt~{self.prompt!r}, output~{self.output!r}"


class ResampleLengths:
    """(prompt, output) pairs drawn with replacement from a trace, keeping their correlation."""

    def __init__(self, prompt, output, source: str = "trace"):
        self.prompt = np.asarray(prompt, dtype=np.int64)
        self.output = np.asarray(output, dtype=np.int64)
        if len(self.prompt) == 0 or len(self.prompt) != len(self.output):
            raise ValueError("Resampling needs equally long, non-empty prompt and output arrays")
        self.source = source

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self.prompt), size=n)
        return self.prompt[idx], self.output[idx]

    def __repr__(self) -> str:
        return f"Resample({self.source}, {len(self.prompt)} pairs)"
