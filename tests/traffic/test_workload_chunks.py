"""`workload_chunks` hands out `build_workload`'s workload in pieces (the streaming run path):
concatenated, the pieces are that workload exactly, draw for draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.traffic.config import build_workload, workload_chunks
from sim.traffic.spec import WorkloadSpec

HERE = Path(__file__).parent

TILED = {
    "trace": "builtin:azure2023_code",
    "rate_scale": 3.0,
    "tile_to_s": 4 * 3600.0,
    "peak_to_trough": 3.0,
    "peak_hour": 2.0,
}
SYNTHETIC = {
    "generator": "poisson",
    "rate_per_s": 5.0,
    "duration_s": 600.0,
    "lengths_from": "builtin:azure2023_conv",
}


def _both(fields: dict, chunk_requests: int):
    spec = WorkloadSpec(**fields)
    whole = build_workload(spec, base_dir=HERE, rng=np.random.default_rng(7), source="t.toml")
    pieces = list(
        workload_chunks(
            spec,
            base_dir=HERE,
            rng=np.random.default_rng(7),
            source="t.toml",
            chunk_requests=chunk_requests,
        )
    )
    return whole, pieces


@pytest.mark.parametrize(
    ("fields", "chunk_requests"),
    [(TILED, 5_000), (TILED, 1), (SYNTHETIC, 700), ({**TILED, "max_requests": 20_000}, 3_000)],
)
def test_pieces_concatenate_to_the_whole_workload(fields, chunk_requests):
    whole, pieces = _both(fields, chunk_requests)
    assert len(pieces) > 1  # really in pieces
    for name in ("arrival_s", "prompt_tokens", "output_tokens", "cached_prompt_tokens"):
        joined = np.concatenate([getattr(p, name) for p in pieces])
        np.testing.assert_array_equal(joined, getattr(whole, name))


def test_tiled_pieces_hold_whole_tiles_not_the_span():
    one_tile = {k: v for k, v in TILED.items() if k in ("trace", "rate_scale")}
    tile = len(_both(one_tile, 10**9)[0])
    whole, pieces = _both(TILED, 2 * tile)
    assert len(pieces) >= 2
    assert max(len(p) for p in pieces) <= 2 * tile + 1  # two tiles at most (thinned)
    assert sum(map(len, pieces)) == len(whole)
