"""The canonical GPU table: source names, instance families, and the never-guess rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrapers.gpu_names import (
    CANONICAL,
    GPU_NAMES,
    INSTANCE_FAMILIES,
    canonical_gpu,
    gpu_memory_gb,
    instance_gpus,
    within_gpu_hour_bound,
)


@pytest.mark.parametrize(
    ("name", "source", "memory_gb", "expected"),
    [
        # Names as the recorded files spell them (tests/fixtures/prices, 2025).
        ("H100-SXM", "runpod", None, "H100-SXM"),
        ("NVIDIA H100 80GB HBM3", "runpod", None, "H100-SXM"),
        ("H100", "runpod", None, "H100-PCIe"),  # RunPod's catalog "H100" is the PCIe card
        ("h100_sxm5", "lambda", None, "H100-SXM"),
        ("h100_pcie", "lambda", None, "H100-PCIe"),
        ("A100-80GB", "lambda", None, "A100-80GB"),
        ("rtx6000", "lambda", None, "RTX-6000"),  # Quadro RTX 6000, not the Ada card
        ("RTX6000-Ada", "runpod", None, "RTX-6000-Ada"),
        ("NVIDIA RTX 6000 Ada Generation", "runpod", None, "RTX-6000-Ada"),
        ("RTX_4080S", "vast", None, "RTX-4080-SUPER"),
        ("NVIDIA GeForce RTX 4090", "runpod", None, "RTX-4090"),
        ("RTX4090", "vast", None, "RTX-4090"),
        ("AMD Instinct MI300X OAM", "runpod", None, "MI300X"),
        ("Nvidia Tesla T4", "gcp", None, "T4"),
        ("Nvidia H100 80GB", "gcp", None, "H100-SXM"),
        ("GH200", "lambda", None, "GH200"),
        ("L40S", None, None, "L40S"),
        ("L40", None, None, "L40"),
        ("A10", None, None, "A10"),
        ("A10G", None, None, "A10G"),
        # "A100" alone needs the memory size.
        ("A100", None, 40.0, "A100-40GB"),
        ("A100_SXM4", "vast", 80.0, "A100-80GB"),
    ],
)
def test_source_names_map_to_canonical(name, source, memory_gb, expected):
    assert canonical_gpu(name, source, memory_gb) == expected


@pytest.mark.parametrize(
    ("name", "source", "memory_gb"),
    [
        ("H100", None, None),  # SXM or PCIe? A generic "H100" is not enough.
        ("H100", "vast", 80.0),  # Vast's AcceleratorName "H100" covers SXM and NVL
        ("A100", None, None),  # 40 or 80 GB: unknown
        ("A100", None, 24.0),  # no A100 has 24 GB: a different board, not a rounding
        ("unknown", "runpod", None),
        ("", None, None),
        (None, None, None),
        ("Radeon Pro V520", "aws", None),
    ],
)
def test_unknown_or_ambiguous_names_are_none(name, source, memory_gb):
    assert canonical_gpu(name, source, memory_gb) is None


def test_table_rows_are_dated_sourced_and_canonical():
    for name, source, canonical, seen in GPU_NAMES:
        assert name and source and seen, name
        assert canonical in CANONICAL or canonical == "A100", canonical
    for pattern, provider, canonical, count, seen in INSTANCE_FAMILIES:
        assert provider in {"aws", "azure"} and seen, pattern
        assert count is None or count > 0, pattern
        assert canonical in CANONICAL or canonical == "A100", canonical


@pytest.mark.parametrize(
    ("instance", "provider", "expected"),
    [
        ("p4d.24xlarge", "aws", ("A100-40GB", 8)),
        ("p4de.24xlarge", "aws", ("A100-80GB", 8)),
        ("p5.48xlarge", "aws", ("H100-SXM", None)),
        ("p5e.48xlarge", "aws", ("H200", 8)),
        ("g5.12xlarge", "aws", ("A10G", None)),  # count comes from the offer's `gpu`
        ("g6.xlarge", "aws", ("L4", None)),
        ("g6e.48xlarge", "aws", ("L40S", None)),
        ("g4dn.xlarge", "aws", ("T4", None)),
        ("Standard_ND96isr_H100_v5", "azure", ("H100-SXM", 8)),
        ("ND96isrH100v5", "azure", ("H100-SXM", 8)),  # meter spelling of the same VM
        ("Standard_NC24ads_A100_v4", "azure", ("A100-80GB", 1)),
        ("Standard_NC96ads_A100_v4", "azure", ("A100-80GB", 4)),
        ("ND96asr_A100_v4", "azure", ("A100-40GB", 8)),
        ("Standard_ND96amsr_A100_v4", "azure", ("A100-80GB", 8)),
        ("NC80adisH100v5", "azure", ("H100-NVL", 2)),
        ("ND96isrH200v5", "azure", ("H200", 8)),
        ("ND128isrNDRGB200v6", "azure", ("GB200", 4)),
        ("Standard_NC4as_T4_v3", "azure", ("T4", 1)),
    ],
)
def test_instance_families(instance, provider, expected):
    assert instance_gpus(instance, provider) == expected


def test_instance_family_unknown_or_other_provider():
    assert instance_gpus("m5.large", "aws") is None
    assert instance_gpus("Standard_D2s_v3", "azure") is None
    assert instance_gpus("p4d.24xlarge", "azure") is None  # an AWS name means nothing at Azure
    assert instance_gpus("p4d.24xlarge.extra", "aws") is None


def test_fractional_azure_gpu():
    gpu, count = instance_gpus("Standard_NV6ads_A10_v5", "azure")
    assert gpu == "A10" and count == pytest.approx(1 / 6)


def test_memory_prefers_the_models_nominal_size():
    assert gpu_memory_gb("RTX-4090", 48.0) == 24.0  # Vast's inconsistent 98280 MiB / 2
    assert gpu_memory_gb("V100", 32.0) == 32.0  # 16 and 32 GB boards: trust the source
    assert gpu_memory_gb(None, 11.0) == 11.0
    assert gpu_memory_gb(None) is None


def test_gpu_hour_bound():
    # MAX_USD_PER_GPU_HOUR = 500 per GPU (scrapers/base.py).
    assert within_gpu_hour_bound(Decimal("98.32"), 8)
    assert within_gpu_hour_bound(Decimal("4000"), 8)
    assert not within_gpu_hour_bound(Decimal("4000.01"), 8)
    assert not within_gpu_hour_bound(Decimal("551221"), 8)  # Azure 1-year reservation total
    assert not within_gpu_hour_bound(Decimal("501"), None)
    assert within_gpu_hour_bound(Decimal("3700"), 1, "CNY")  # no exchange rate: not checked


@given(st.text(max_size=30), st.sampled_from([None, "lambda", "runpod", "vast", "gcp"]))
def test_canonical_gpu_is_total_and_closed(name, source):
    result = canonical_gpu(name, source)
    assert result is None or result in CANONICAL


def test_purchase_table_names_map_without_guessing():
    # Names as they appear in gpu_purchase_price_history_rows.csv (United-Compute, 2025-05).
    assert canonical_gpu("NVIDIA H100 PCIe 80 GB", "gpu_purchase") == "H100-PCIe"
    assert canonical_gpu("NVIDIA A100 40GB PCle", "gpu_purchase") == "A100-40GB"
    assert canonical_gpu("NVIDIA A40 PCIe", "gpu_purchase") == "A40"
    assert canonical_gpu("NVIDIA H100 PCIe 96 GB", "gpu_purchase") is None
