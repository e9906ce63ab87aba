"""Decode-step floors the step-time model is checked against (`sim perf` at batch 1 and 16).

Two floors per case, per GPU of the TP group:
- the bandwidth floor: weights + KV read once at the datasheet bandwidth. No step can beat it.
- the linear-op floor: the linear layers' weights (and the KV cache the batch reads) streamed at
  0.70 of the datasheet bandwidth, the upper end of the efficiency measured for vLLM-style
  weight-bound decode kernels on A100 and H100 (0.65-0.70; the project's reference notes,
  docs/calibration.md). A decode step is these reads plus all-reduces and overhead, so it must
  sit within 1.35x of this floor (TP > 1: 1.5x, for the all-reduces).

These are computed floors from datasheets and one measured efficiency, not per-layer kernel
timings: the public per-layer operator profiles we know of (vidur's) are reserved for an
independent check and are not used here. `python -m sim.perf.calibration` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.perf.profile import build_profile

MEASURED_GEMV_EFF = 0.70
RATIO_LIMIT_TP1, RATIO_LIMIT_TP = 1.35, 1.5
FLOOR_CTX_TOKENS = 1024


@dataclass(frozen=True)
class FloorCase:
    model: str
    gpu: str
    tp: int
    batch: int


FLOOR_CASES: tuple[FloorCase, ...] = tuple(
    FloorCase(m, g, tp, b)
    for m, g, tp in (
        ("llama-3.1-8b", "a100-80gb", 1),
        ("llama-3.1-8b", "a100-40gb", 1),
        ("llama-3.1-8b", "h100-sxm", 1),
        ("llama-2-7b", "a40", 1),
        ("llama-3.1-8b", "a40", 1),
        ("codellama-34b", "a40", 2),
        ("llama-2-70b", "a40", 4),
        ("llama-2-70b", "a100-80gb", 2),
        ("llama-2-70b", "a100-80gb", 4),
        ("llama-2-70b", "a100-80gb", 8),
        ("llama-2-70b", "h100-sxm", 2),
        ("llama-2-70b", "h100-sxm", 4),
        ("llama-2-70b", "h100-sxm", 8),
        ("llama-3.1-70b", "h100-sxm", 4),
        ("mixtral-8x7b", "a100-80gb", 2),
        ("mixtral-8x7b", "h100-sxm", 2),
    )
    for b in (1, 16)
)


def floors_ms(case: FloorCase, engine_profile: str = "vllm-v1") -> tuple[float, float, float]:
    """(simulated decode step, bandwidth floor, linear-op floor), in ms."""
    p = build_profile(case.model, case.gpu, tp=case.tp, engine_profile=engine_profile)
    bw = p.gpu.bandwidth_gbps * 1e9
    miss = p._moe_miss**case.batch
    weights = p._dense_read_bytes + p._routed_read_bytes * (1.0 - miss)
    kv = p._kv_read_per_token * case.batch * FLOOR_CTX_TOKENS
    sim = p.decode_step_s(case.batch, FLOOR_CTX_TOKENS) * 1e3
    return sim, (weights + kv) / bw * 1e3, (weights + kv) / (bw * MEASURED_GEMV_EFF) * 1e3


def ratio_limit(case: FloorCase) -> float:
    return RATIO_LIMIT_TP if case.tp > 1 else RATIO_LIMIT_TP1


def table(engine_profile: str = "vllm-v1") -> str:
    lines = [
        "| model | GPU | TP | batch | sim ms | bandwidth floor ms | linear-op floor ms | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in FLOOR_CASES:
        sim, bw_floor, lin = floors_ms(c, engine_profile)
        lines.append(
            f"| {c.model} | {c.gpu} | {c.tp} | {c.batch} | {sim:.2f} | {bw_floor:.2f} "
            f"| {lin:.2f} | {sim / lin:.2f} (limit {ratio_limit(c)}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
