"""Every price source by name, imported only when used so one broken module never blocks the rest."""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module. The name is what users type (`sim prices refresh --source lambda`) and what
# `INFERCOST_<NAME>_URL` overrides; `lambda` is a Python keyword, hence the module name.
SOURCES: dict[str, str] = {
    "litellm": "scrapers.litellm",
    "openrouter": "scrapers.openrouter",
    "llm_prices": "scrapers.llm_prices",
    "azure": "scrapers.azure",
    "aws": "scrapers.aws",
    "aws_vantage": "scrapers.aws_vantage",
    "aws_skypilot": "scrapers.aws_skypilot",
    "gcp": "scrapers.gcp",
    "lambda": "scrapers.lambda_cloud",
    "runpod": "scrapers.runpod",
    "vast": "scrapers.vast",
    "modal": "scrapers.modal",
    "gpu_purchase": "scrapers.gpu_purchase",
}


def get_source(name: str) -> ModuleType:
    """The source module for `name`; KeyError for an unknown name."""
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return importlib.import_module(SOURCES[name])
