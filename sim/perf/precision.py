"""Numeric precisions as model transforms: bytes per weight, KV-cache bytes per element, and which
tensor-core rate the matrix multiplies run at."""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import InputError


@dataclass(frozen=True)
class Precision:
    """bytes_per_weight includes quantisation scales; compute is "bf16", "fp8" or "int8": the
    GpuSpec peak the GEMMs run at (weight-only formats dequantise to BF16 inside the kernel)."""

    name: str
    bytes_per_weight: float
    kv_bytes_per_elem: float
    compute: str
    note: str = ""


# Scale overheads: FP8 and INT8 use one FP32 scale per output channel (4 B per row of several
# thousand weights: < 0.1%); INT4 (AWQ/GPTQ, group size 128) stores an FP16 scale and a 4-bit zero
# point per 128 weights: 0.5 + (2 + 0.5) / 128 = 0.5195 B per weight.
PRECISIONS: dict[str, Precision] = {
    "bf16": Precision("bf16", 2.0, 2.0, "bf16", "16-bit weights, activations and KV cache"),
    "fp16": Precision("fp16", 2.0, 2.0, "bf16", "same tensor-core rate as BF16"),
    "fp8": Precision(
        "fp8",
        1.001,
        1.0,
        "fp8",
        "W8A8 FP8 with FP8 KV cache; on GPUs without FP8 units weight-only (BF16 compute)",
    ),
    "int8": Precision("int8", 1.001, 2.0, "int8", "W8A8 INT8 (SmoothQuant-style), 16-bit KV cache"),
    "int4": Precision(
        "int4",
        0.5 + 2.5 / 128,
        2.0,
        "bf16",
        "weight-only INT4 (AWQ/GPTQ g128), BF16 compute, 16-bit KV cache",
    ),
}

KV_DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}


def get_precision(name: str, kv_dtype: str | None = None) -> Precision:
    """A precision by name (bf16, fp16, fp8, int8, int4); kv_dtype overrides the KV-cache dtype."""
    key = str(name).strip().lower()
    if key not in PRECISIONS:
        raise InputError("precision", str(name), f"unknown; known: {', '.join(PRECISIONS)}")
    prec = PRECISIONS[key]
    if kv_dtype is None:
        return prec
    kv_key = str(kv_dtype).strip().lower()
    if kv_key not in KV_DTYPE_BYTES:
        raise InputError("kv_dtype", str(kv_dtype), f"unknown; known: {', '.join(KV_DTYPE_BYTES)}")
    return Precision(
        f"{prec.name}+kv-{kv_key}",
        prec.bytes_per_weight,
        KV_DTYPE_BYTES[kv_key],
        prec.compute,
        prec.note,
    )
