"""Serving physics: model and GPU catalogs, precision transforms, and the memory and step-time
model of a replica that the fleet engine and `sim perf` use."""

from sim.perf.catalog import (
    GpuSpec,
    ModelSpec,
    list_gpus,
    list_models,
    load_gpu,
    load_model,
    model_from_hf_config,
)
from sim.perf.precision import Precision, get_precision
from sim.perf.profile import ServingProfile, build_profile, kv_bytes_per_token, requirements

__all__ = [
    "GpuSpec",
    "ModelSpec",
    "Precision",
    "ServingProfile",
    "build_profile",
    "get_precision",
    "kv_bytes_per_token",
    "list_gpus",
    "list_models",
    "load_gpu",
    "load_model",
    "model_from_hf_config",
    "requirements",
]
