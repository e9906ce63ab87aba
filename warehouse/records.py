"""The records the warehouse accepts: typed price observations and raw HTTP captures.

Scrapers build these; only `warehouse/` turns them into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# Allowed vocabularies. Extend here (and document in docs/warehouse.md) when a source needs more.
KINDS = frozenset(
    {"api_token", "api_request", "gpu_instance", "gpu_serverless", "gpu_purchase", "electricity"}
)
TERMS = frozenset(
    {
        "on_demand",
        "spot",
        "low_priority",
        "reserved_1y",  # standard, no upfront (AWS, Azure, GCP alike)
        "reserved_3y",
        # AWS Reserved Instances by purchase option and offering class: `price` is the hourly
        # equivalent with the upfront fee spread over the term, the fee itself is `upfront`.
        "reserved_1y_partial_upfront",
        "reserved_1y_all_upfront",
        "reserved_3y_partial_upfront",
        "reserved_3y_all_upfront",
        "reserved_convertible_1y",
        "reserved_convertible_1y_partial_upfront",
        "reserved_convertible_1y_all_upfront",
        "reserved_convertible_3y",
        "reserved_convertible_3y_partial_upfront",
        "reserved_convertible_3y_all_upfront",
        "savings_plan_1y",
        "savings_plan_3y",
        "commitment_1y",
        "commitment_3y",
        "batch",
        "purchase",
        "community",
        "secure",
    }
)
UNITS = frozenset(
    {
        "usd_per_mtok_input",
        "usd_per_mtok_output",
        "usd_per_mtok_cached_input",
        "usd_per_mtok_cache_write",
        "usd_per_request",
        "usd_per_hour",
        "usd_per_gpu_hour",
        "usd_per_second",
        "usd",
        "usd_per_kwh",
    }
)


@dataclass(frozen=True, slots=True)
class PriceRecord:
    """One observed price. The natural key is (source, kind, provider, sku, region, term, unit, tier_min_tokens).

    `unit` names the quantity (per million input tokens, per hour, ...); `currency` says in which
    money it is (unit names say `usd_` for historical reasons but a CNY price keeps currency="CNY"
    and is never converted). `price` is an exact Decimal. Attributes are None when the source does
    not say: never guess.
    """

    source: str  # scraper name, e.g. "litellm", "azure", "snapshot" never appears here
    kind: str  # one of KINDS
    provider: str  # who sells it: "openai", "azure", "aws", "lambda", ...
    sku: str  # model id or instance type, as the provider names it
    region: str  # provider region, "" when the price is global
    term: str  # one of TERMS
    unit: str  # one of UNITS
    price: Decimal
    currency: str = "USD"
    tier_min_tokens: int = 0  # price applies to prompts above this many tokens (0 = base tier)
    gpu_model: str | None = None  # canonical GPU name (scrapers/gpu_names.py), e.g. "H100-SXM"
    gpu_name_source: str | None = None  # the source's own GPU name, kept for audit
    gpu_count: float | None = None  # may be fractional for shared GPUs
    gpu_memory_gb: float | None = None  # per GPU
    vcpus: float | None = None
    ram_gb: float | None = None
    context_length: int | None = None
    valid_from: datetime | None = None  # only for sources that publish dated periods (llm_prices)
    valid_to: datetime | None = None
    # One-time fee in `currency` paid when a reserved term starts; `price` already includes it
    # spread evenly over the term's hours. None for terms without a fee.
    upfront: Decimal | None = None


# How far an observation's date can be trusted (price_periods.observed_at_quality):
# exact = the source states when the price was seen or in force (a scrape, a dated period, a
# generated file's own "last updated" line); release_date = the day a release or commit carrying
# the price was published (the price was current no later than that); approximate = a stand-in.
OBSERVED_AT_QUALITIES = ("exact", "release_date", "approximate")


@dataclass(frozen=True, slots=True)
class RawCapture:
    """One HTTP response as received, so a fixed parser can re-parse it later."""

    source: str
    url: str
    fetched_at: datetime  # timezone-aware UTC
    http_status: int
    body: bytes
    content_type: str | None = None
