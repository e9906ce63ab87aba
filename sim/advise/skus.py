"""The maintained mapping from perf-catalog models to the API SKUs that serve them
(sim/advise/data/model_skus.toml)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

MAPPING_FILE = Path(__file__).parent / "data" / "model_skus.toml"


@functools.cache
def _mapping() -> dict[str, tuple[str, ...]]:
    raw = tomllib.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    return {model: tuple(entry.get("skus", ())) for model, entry in raw.items()}


def api_skus(model: str) -> tuple[str, ...]:
    """Every API SKU listed for catalog model `model` (empty when none is known)."""
    return _mapping().get(model, ())


def mapped_models() -> list[str]:
    return sorted(_mapping())
