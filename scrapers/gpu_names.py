"""One canonical name per GPU model, and which GPUs each cloud instance type carries.

Sources name the same GPU many ways ("H100-SXM", "NVIDIA H100 80GB HBM3", "ND96isr_H100_v5",
"p5.48xlarge"). Scrapers keep the source's own name in `gpu_name_source` and store the canonical
name from here in `gpu_model`; an unknown name maps to None, never to a guess. Every row says where
and when the name was observed. The table is also rendered in docs/gpu_names.md.
"""

from __future__ import annotations

import re
from decimal import Decimal

from scrapers.base import MAX_USD_PER_GPU_HOUR

# Canonical GPU -> nominal memory per GPU in GB (vendor spec). None where the model ships in
# more than one memory size under one name (then the source's own figure is used).
GPU_MEMORY_GB: dict[str, float | None] = {
    "B200": 180.0,  # HGX B200: 1440 GB / 8 (RunPod GraphQL memoryInGb 180, 2025-06)
    "GB200": None,
    "H200": 141.0,
    "GH200": 96.0,
    "H100-SXM": 80.0,
    "H100-PCIe": 80.0,
    "H100-NVL": 94.0,
    "A100-80GB": 80.0,
    "A100-40GB": 40.0,
    "L40S": 48.0,
    "L40": 48.0,
    "L4": 24.0,
    "A10G": 24.0,
    "A10": 24.0,
    "A30": 24.0,
    "A40": 48.0,
    "A6000": 48.0,
    "A5000": 24.0,
    "A4500": 20.0,
    "A4000": 16.0,
    "A2000": None,  # 6 GB and 12 GB boards
    "RTX-PRO-6000": 96.0,
    "RTX-6000-Ada": 48.0,
    "RTX-5000-Ada": 32.0,
    "RTX-4000-Ada": 20.0,
    "RTX-2000-Ada": 16.0,
    "RTX-6000": 24.0,  # Quadro RTX 6000 (Turing), Lambda's gpu_1x_rtx6000
    "T4": 16.0,
    "V100": None,  # 16 GB and 32 GB boards
    "P100": 16.0,
    "P4": 8.0,
    "K80": 12.0,  # per GK210 die, as clouds count them
    "MI300X": 192.0,
    "B300": None,  # per-GPU size not settled in the sources here: the source figure is used
    # AWS's own accelerators, priced like GPUs (per device, as the offer files' `gpu` counts them).
    "Inferentia2": 32.0,
    "Trainium": 32.0,
    "Trainium2": 96.0,
    "RTX-5090": 32.0,
    "RTX-5080": 16.0,
    "RTX-4090": 24.0,
    "RTX-4080-SUPER": 16.0,
    "RTX-4080": 16.0,
    "RTX-4070-Ti": 12.0,
    "RTX-3090-Ti": 24.0,
    "RTX-3090": 24.0,
    "RTX-3080-Ti": 12.0,
    "RTX-3080": None,  # 10 GB and 12 GB boards
    "RTX-3070": 8.0,
    "RTX-3060": None,  # 8 GB and 12 GB boards
}
CANONICAL = frozenset(GPU_MEMORY_GB)

# Names whose canonical model depends on the memory size the source reports.
_BY_MEMORY = {"A100": {40.0: "A100-40GB", 80.0: "A100-80GB"}}

# (source name, source or "*" for any source, canonical, where/when observed).
# Source names are matched after `_norm` (case, spaces, dashes, "NVIDIA"/"GeForce"/"Tesla" dropped).
# A canonical of "A100" means "A100-40GB or A100-80GB by the reported memory".
GPU_NAMES: tuple[tuple[str, str, str, str], ...] = (
    # Unambiguous anywhere.
    ("H100-SXM", "*", "H100-SXM", "runpod skypilot catalog v7 0727c2bd, 2025"),
    ("H100 SXM", "*", "H100-SXM", "runpod graphql displayName, 2025-06"),
    ("H100_SXM", "*", "H100-SXM", "vast skypilot catalog v7 00690e76 (instance token), 2025"),
    ("H100 80GB HBM3", "*", "H100-SXM", "runpod graphql id 'NVIDIA H100 80GB HBM3', 2025-06"),
    ("H100 PCIe", "*", "H100-PCIe", "runpod graphql id 'NVIDIA H100 PCIe', 2025-06"),
    ("H100-NVL", "*", "H100-NVL", "runpod skypilot catalog v7, 2025"),
    ("H100_NVL", "*", "H100-NVL", "vast skypilot catalog v7 (instance token), 2025"),
    ("H100 NVL", "*", "H100-NVL", "runpod graphql id 'NVIDIA H100 NVL', 2025-06"),
    ("H200", "*", "H200", "vast/runpod catalogs, 2025"),
    ("H200-SXM", "*", "H200", "runpod skypilot catalog v7, 2025"),
    ("H200 SXM", "*", "H200", "runpod graphql displayName, 2025-06"),
    ("H200 141GB", "*", "H200", "gcp billing sku 'H200 141GB GPU', 2025-06"),
    ("GH200", "*", "GH200", "lambda skypilot catalog v6/v7, 2025"),
    ("B200", "*", "B200", "runpod catalog and graphql 'NVIDIA B200', 2025"),
    ("GB200", "*", "GB200", "azure ND128isr_NDR_GB200_v6, 2025-06"),
    ("A100-80GB", "*", "A100-80GB", "lambda/runpod skypilot catalogs v7, 2025"),
    ("A100-80GB-SXM", "*", "A100-80GB", "runpod skypilot catalog v7, 2025"),
    ("A100 80GB PCIe", "*", "A100-80GB", "runpod graphql id, 2025-06"),
    ("A100-SXM4-80GB", "*", "A100-80GB", "runpod graphql id, 2025-06"),
    ("A100 80GB", "*", "A100-80GB", "gcp billing sku 'Nvidia Tesla A100 80GB GPU', 2025-06"),
    ("A100-40GB", "*", "A100-40GB", "canonical name"),
    ("A100", "*", "A100", "lambda/vast catalogs, gcp 'Nvidia Tesla A100 GPU' (40 GB), 2025"),
    ("A100_SXM4", "*", "A100", "vast skypilot catalog v7 (instance token), 2025"),
    ("A100 SXM", "*", "A100", "runpod graphql displayName (80 GB there), 2025-06"),
    ("A100 PCIe", "*", "A100", "runpod graphql displayName (80 GB there), 2025-06"),
    ("L40S", "*", "L40S", "runpod/vast catalogs, 2025"),
    ("L40", "*", "L40", "runpod catalog, 2025"),
    ("L4", "*", "L4", "runpod catalog, gcp 'Nvidia L4 GPU', 2025"),
    ("A10G", "*", "A10G", "aws g5 family"),
    ("A10", "*", "A10", "lambda gpu_1x_a10 and vast 2x-A10, 2025"),
    ("A30", "*", "A30", "runpod graphql, 2025-06"),
    ("A40", "*", "A40", "runpod/vast catalogs, 2025"),
    ("A6000", "*", "A6000", "lambda gpu_1x_a6000, 2025"),
    ("RTXA6000", "*", "A6000", "runpod catalog 'RTXA6000', vast token 'RTX_A6000', 2025"),
    ("RTXA5000", "*", "A5000", "runpod/vast catalogs, 2025"),
    ("RTXA4500", "*", "A4500", "runpod catalog, 2025"),
    ("RTXA4000", "*", "A4000", "runpod/vast catalogs, 2025"),
    ("RTX A2000", "*", "A2000", "runpod graphql, 2025-06"),
    ("RTX PRO 6000 Blackwell Workstation Edition", "*", "RTX-PRO-6000", "runpod graphql, 2025-06"),
    ("RTX6000-Ada", "*", "RTX-6000-Ada", "runpod/vast catalogs, 2025"),
    ("RTX_6000Ada", "*", "RTX-6000-Ada", "vast instance token, 2025"),
    ("RTX 6000 Ada Generation", "*", "RTX-6000-Ada", "runpod graphql, 2025-06"),
    ("RTX 5000 Ada Generation", "*", "RTX-5000-Ada", "runpod graphql, 2025-06"),
    ("RTX4000-Ada", "*", "RTX-4000-Ada", "runpod catalog, 2025"),
    ("RTX 4000 Ada Generation", "*", "RTX-4000-Ada", "runpod graphql, 2025-06"),
    ("RTX 2000 Ada Generation", "*", "RTX-2000-Ada", "runpod graphql, 2025-06"),
    ("T4", "*", "T4", "gcp 'Nvidia Tesla T4 GPU', aws g4dn"),
    ("V100", "*", "V100", "lambda/vast catalogs, gcp 'Nvidia Tesla V100 GPU'"),
    ("V100-FHHL-16GB", "*", "V100", "runpod graphql id 'Tesla V100-FHHL-16GB', 2025-06"),
    ("V100-PCIE-16GB", "*", "V100", "runpod graphql, 2025-06"),
    ("V100-SXM2-16GB", "*", "V100", "runpod graphql, 2025-06"),
    ("V100-SXM2-32GB", "*", "V100", "runpod graphql, 2025-06"),
    ("P100", "*", "P100", "gcp 'Nvidia Tesla P100 GPU', 2025-06"),
    ("P4", "*", "P4", "gcp 'Nvidia Tesla P4 GPU', 2025-06"),
    ("K80", "*", "K80", "aws p2 family"),
    ("B300", "*", "B300", "aws p6-b300 (vantage export, 2025-11)"),
    ("Inferentia2", "*", "Inferentia2", "aws inf2, skypilot aws catalog v7"),
    ("Trainium", "*", "Trainium", "aws trn1/trn1n, skypilot aws catalog v7"),
    ("Trainium2", "*", "Trainium2", "aws trn2 family"),
    ("MI300X", "*", "MI300X", "runpod catalog, 2025"),
    ("AMD Instinct MI300X OAM", "*", "MI300X", "runpod graphql id, 2025-06"),
    ("RTX5090", "*", "RTX-5090", "vast/runpod, 2025"),
    ("RTX5080", "*", "RTX-5080", "runpod graphql, 2025-06"),
    ("RTX4090", "*", "RTX-4090", "runpod/vast catalogs, 2025"),
    (
        "RTX_4080S",
        "*",
        "RTX-4080-SUPER",
        "vast instance token (AcceleratorName says RTX4080), 2025",
    ),
    ("RTX 4080 SUPER", "*", "RTX-4080-SUPER", "runpod graphql, 2025-06"),
    ("RTX4080", "*", "RTX-4080", "runpod graphql, 2025-06"),
    ("RTX 4070 Ti", "*", "RTX-4070-Ti", "runpod graphql, 2025-06"),
    ("RTX 3090 Ti", "*", "RTX-3090-Ti", "runpod graphql, 2025-06"),
    ("RTX3090", "*", "RTX-3090", "runpod/vast catalogs, 2025"),
    ("RTX 3080 Ti", "*", "RTX-3080-Ti", "runpod graphql, 2025-06"),
    ("RTX3080", "*", "RTX-3080", "runpod graphql, 2025-06"),
    ("RTX3070", "*", "RTX-3070", "runpod graphql, 2025-06"),
    ("RTX3060", "*", "RTX-3060", "vast catalog, 2025"),
    # Names whose meaning depends on the source.
    (
        "H100",
        "runpod",
        "H100-PCIe",
        "runpod skypilot catalog v7: 'H100' is 'NVIDIA H100 PCIe', 2025",
    ),
    ("h100_sxm5", "lambda", "H100-SXM", "lambda skypilot catalog v7 gpu_1x_h100_sxm5, 2025"),
    ("h100_pcie", "lambda", "H100-PCIe", "lambda skypilot catalog v7 gpu_1x_h100_pcie, 2025"),
    ("a100_80gb_sxm4", "lambda", "A100-80GB", "lambda skypilot catalog v7, 2025"),
    ("a100_sxm4", "lambda", "A100-40GB", "lambda catalog v7: GpuInfo 40960 MiB, 2025"),
    ("a100", "lambda", "A100-40GB", "lambda catalog v7: GpuInfo 40960 MiB, 2025"),
    ("rtx6000", "lambda", "RTX-6000", "lambda gpu_1x_rtx6000 is a Quadro RTX 6000, 24 GB, 2025"),
    ("Nvidia H100 80GB Mega", "gcp", "H100-SXM", "gcp a3-mega machines (H100 SXM 80GB), 2025-06"),
    ("Nvidia H100 Mega 80GB", "gcp", "H100-SXM", "gcp billing sku variant spelling, 2025-06"),
    ("Nvidia H100 80GB", "gcp", "H100-SXM", "gcp a3-highgpu machines (H100 SXM 80GB), 2025-06"),
    # Retail listings in the GPU purchase price table (United-Compute gpu-price-tracker, 2025-05).
    # "PCle" is the source's own typo. "H100 PCIe 96 GB" stays unmapped: no such SKU is sold
    # under that name (the 94 GB H100 NVL is the nearest), so it is not guessed.
    ("NVIDIA H100 PCIe 80 GB", "gpu_purchase", "H100-PCIe", "gpu-price-tracker rows, 2025-05"),
    ("NVIDIA A100 40GB PCle", "gpu_purchase", "A100-40GB", "gpu-price-tracker rows, 2025-05"),
    ("NVIDIA A40 PCIe", "gpu_purchase", "A40", "gpu-price-tracker rows, 2025-05"),
)


def _norm(name: str) -> str:
    text = name.lower()
    for noise in ("nvidia", "geforce", "tesla", "quadro"):
        text = text.replace(noise, "")
    return re.sub(r"[^a-z0-9]", "", text)


_GENERIC: dict[str, str] = {}
_BY_SOURCE: dict[tuple[str, str], str] = {}
for _name, _source, _canonical, _seen in GPU_NAMES:
    if _source == "*":
        _GENERIC[_norm(_name)] = _canonical
    else:
        _BY_SOURCE[(_source, _norm(_name))] = _canonical


def canonical_gpu(
    name: str | None, source: str | None = None, memory_gb: float | None = None
) -> str | None:
    """The canonical GPU name for a source's `name`, or None when unknown or ambiguous.

    `memory_gb` (per GPU) settles names that do not say their size, like Lambda's "A100".
    """
    if not name:
        return None
    key = _norm(name)
    canonical = _BY_SOURCE.get((source, key)) if source else None
    canonical = canonical or _GENERIC.get(key)
    if canonical in _BY_MEMORY:
        if memory_gb is None:
            return None
        sizes = _BY_MEMORY[canonical]
        nearest = min(sizes, key=lambda size: abs(size - memory_gb))
        # A reported size far from every known size is a different board: do not guess.
        return sizes[nearest] if abs(nearest - memory_gb) <= 0.1 * nearest else None
    return canonical


def gpu_memory_gb(canonical: str | None, reported_gb: float | None = None) -> float | None:
    """Memory per GPU: the model's nominal size when it has one, else what the source reported.

    Sources disagree with themselves (Vast lists 2x RTX 4090 with both 48 and 96 GB in total),
    while the model's memory is a fact.
    """
    nominal = GPU_MEMORY_GB.get(canonical) if canonical else None
    return nominal if nominal is not None else reported_gb


# Instance families: (pattern on the instance/VM name, provider, canonical GPU, GPUs per instance
# or None when the count comes from the source, where/when observed). Patterns are matched
# against the name lower-cased with "standard_" and underscores removed, so Azure's two
# spellings (Standard_ND96isr_H100_v5 in the API, ND96isrH100v5 in meter names) share a row.
INSTANCE_FAMILIES: tuple[tuple[str, str, str, float | None, str], ...] = (
    # AWS EC2 (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html, 2025).
    (r"p6-b200\.48xlarge", "aws", "B200", 8, "aws accelerated computing docs, 2025"),
    (r"p5en?\.48xlarge", "aws", "H200", 8, "aws docs: p5e/p5en carry 8x H200, 2025"),
    (r"p5\.(48xlarge|4xlarge)", "aws", "H100-SXM", None, "aws docs: p5 = H100 SXM, 2025"),
    (r"p4de\.24xlarge", "aws", "A100-80GB", 8, "aws docs, 2025"),
    (r"p4d\.24xlarge", "aws", "A100-40GB", 8, "aws offer file us-east-1 2024-05 (gpu=8)"),
    (r"p3dn\.24xlarge", "aws", "V100", 8, "aws docs (32 GB V100), 2025"),
    (
        r"p3\.(2|8|16)xlarge",
        "aws",
        "V100",
        None,
        "aws offer file us-east-2 2023-03 (p3.8xlarge gpu=4)",
    ),
    (r"p2\.\w+", "aws", "K80", None, "aws docs, 2025"),
    (r"p6-b300\.48xlarge", "aws", "B300", 8, "aws accelerated computing docs, 2025"),
    (r"gr6\.\w+", "aws", "L4", None, "aws docs: gr6 = g6 with more memory per vCPU, 2025"),
    (r"inf2\.\w+", "aws", "Inferentia2", None, "aws docs, 2025"),
    (r"trn1n?\.\w+", "aws", "Trainium", None, "aws docs, 2025"),
    (r"trn2u?\.48xlarge", "aws", "Trainium2", 16, "aws docs: 16 Trainium2 chips, 2025"),
    (r"g6e\.\w+", "aws", "L40S", None, "aws docs, 2025"),
    (r"g6\.\w+", "aws", "L4", None, "aws docs, 2025"),
    (r"g5\.\w+", "aws", "A10G", None, "aws docs, 2025"),
    (r"g4dn\.\w+", "aws", "T4", None, "aws docs, 2025"),
    # Azure (learn.microsoft.com/azure/virtual-machines/sizes, 2025; names from the retail API
    # projection azure_gpu_retail_prices_projection.json, 2025-06).
    (r"nc24adsa100v4", "azure", "A100-80GB", 1, "azure NC A100 v4 sizes, 2025"),
    (r"nc48adsa100v4", "azure", "A100-80GB", 2, "azure NC A100 v4 sizes, 2025"),
    (r"nc96adsa100v4", "azure", "A100-80GB", 4, "azure NC A100 v4 sizes, 2025"),
    (r"nd96am?sr?a100v4(nu)?", "azure", "A100", 8, "azure ND A100 v4: asr=40GB, amsr=80GB, 2025"),
    (r"nc40adsh100v5", "azure", "H100-NVL", 1, "azure NCads H100 v5 (94 GB), 2025"),
    (r"nc80adish100v5", "azure", "H100-NVL", 2, "azure NCads H100 v5 (94 GB), 2025"),
    (r"ncc40adsh100v5", "azure", "H100-NVL", 1, "azure NCCads H100 v5 (94 GB), 2025"),
    (r"nd96is\w*h100v5", "azure", "H100-SXM", 8, "azure ND H100 v5 sizes, 2025"),
    (r"nd96isrh200v5", "azure", "H200", 8, "azure ND H200 v5 sizes, 2025"),
    (r"nd96isrmi300xv5", "azure", "MI300X", 8, "azure ND MI300X v5 sizes, 2025"),
    (r"nd128isrndrgb200v6", "azure", "GB200", 4, "azure ND GB200 v6 sizes, 2025"),
    (r"nc(4|8|16|64)ast4v3", "azure", "T4", None, "azure NCasT4_v3 sizes, 2025"),
    (r"nc(6|12|24)r?sv3", "azure", "V100", None, "azure NCv3 sizes, 2025"),
    (r"nv(6|12|18|36|72)adm?sa10v5", "azure", "A10", None, "azure NVadsA10 v5 (fractional GPUs)"),
)
# GPUs per Azure VM where the family row leaves it open: the VM's vCPU count picks the size.
_AZURE_COUNTS = {
    "nc4ast4v3": 1, "nc8ast4v3": 1, "nc16ast4v3": 1, "nc64ast4v3": 4,
    "nc6sv3": 1, "nc12sv3": 2, "nc24sv3": 4, "nc24rsv3": 4,
    "nv6adsa10v5": 1 / 6, "nv12adsa10v5": 1 / 3, "nv18adsa10v5": 1 / 2,
    "nv36adsa10v5": 1, "nv36admsa10v5": 1, "nv72adsa10v5": 2,
}  # fmt: skip

_COMPILED = [(re.compile(p), prov, gpu, n) for p, prov, gpu, n, _ in INSTANCE_FAMILIES]


def _instance_key(name: str) -> str:
    key = name.strip().lower()
    key = key.removeprefix("standard_")
    return key.replace("_", "")


def instance_gpus(instance_type: str, provider: str) -> tuple[str, float | None] | None:
    """(canonical GPU, GPUs per instance) for a cloud instance type; None for an unknown type.

    The count is None when the family does not fix it (AWS g5.*: the offer file's `gpu` says).
    """
    key = _instance_key(instance_type)
    for pattern, prov, gpu, count in _COMPILED:
        if prov != provider or not pattern.fullmatch(key):
            continue
        if gpu == "A100":  # Azure ND A100 v4: the name's 'm' says 80 GB.
            gpu = "A100-80GB" if re.match(r"nd96ams", key) else "A100-40GB"
        if count is None and provider == "azure":
            count = _AZURE_COUNTS.get(key)
        return gpu, count
    return None


def within_gpu_hour_bound(price: Decimal, gpu_count: float | None, currency: str = "USD") -> bool:
    """False for a price no GPU-hour can cost: a unit mix-up or a reservation total.

    Only USD is checked; other currencies pass because there is no exchange rate here.
    """
    if currency != "USD":
        return True
    gpus = Decimal(str(gpu_count)) if gpu_count and gpu_count > 0 else Decimal(1)
    return price <= MAX_USD_PER_GPU_HOUR * max(gpus, Decimal(1))
