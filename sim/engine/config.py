"""Configuration of the three fleet kinds: one validated dataclass each, with a `kind` tag, and
bounds and help beside every field. These classes are part of the one scenario schema
(sim/scenario/schema.py): pydantic validates them when a scenario loads (and again on every
`dataclasses.replace`), so the engine trusts typed, in-range values. Prices left as None are
resolved from the warehouse before a run.

Bounds say what a real deployment can be, not what a float can hold: each `le` is far above any
real offer (an 8x B200 instance rents for about 100 USD/h; the bound is 5,000) and exists so that
a typo such as `1e308` fails at load instead of overflowing the arithmetic later.
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Annotated, Literal

from pydantic import AllowInfNan, ConfigDict, Field, Strict, field_validator, model_validator
from pydantic.dataclasses import dataclass

# Strict scalar types: TOML gives real numbers, booleans and strings, so a string "2" where a
# number belongs is a mistake to report, not a value to coerce.
Num = Annotated[float, Strict(), AllowInfNan(False)]
Int = Annotated[int, Strict()]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]

CONFIG = ConfigDict(extra="forbid")

# Names become file names (run directories, report anchors): a safe character set only.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[Str, Field(pattern=NAME_PATTERN, description="letters, digits, '-', '_', '.'")]

MAX_USD_PER_HOUR = 5_000.0  # per instance-hour; real offers top out near 100
MIN_USD_PER_HOUR = 0.01  # the cheapest GPU rentals are ~0.05 USD/h: below a cent is a typo
MAX_USD_PER_MTOK = 1_000.0  # per million tokens; the dearest models are near 150 (output)
MAX_SECONDS = 31_622_400.0  # 366 days: the longest span a scenario describes
YEAR_S = 365.25 * 86400  # the calendar-average year: amortisation and billing months
MONTH_S = YEAR_S / 12  # API volume tiers reset and colocation bills every such month
MAX_GPUS = 100_000  # GPUs in one fleet: beyond any single deployment, and bounded memory

Seconds = Annotated[Num, Field(ge=0, le=MAX_SECONDS)]
Fraction = Annotated[Num, Field(ge=0, le=1)]

DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "const": ("value",),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
}


@dataclass(frozen=True, config=CONFIG)
class DistSpec:
    """A positive random quantity: `{dist = "lognormal", median = 0.3, sigma = 0.4}` in TOML.

    dist: "const" (value), "exponential" (mean), "lognormal" (median, sigma),
          "uniform" (low, high), "normal" (mean, std; truncated at 0).
    sigma is at most 5 (a p99/p50 ratio of e^11.6, already beyond any measured latency spread).
    """

    dist: Literal["const", "exponential", "lognormal", "uniform", "normal"] = "const"
    value: Annotated[Num, Field(ge=0, le=1e9)] | None = None
    mean: Annotated[Num, Field(ge=0, le=1e9)] | None = None
    median: Annotated[Num, Field(gt=0, le=1e9)] | None = None
    sigma: Annotated[Num, Field(ge=0, le=5)] | None = None
    std: Annotated[Num, Field(ge=0, le=1e9)] | None = None
    low: Annotated[Num, Field(ge=0, le=1e9)] | None = None
    high: Annotated[Num, Field(ge=0, le=1e9)] | None = None

    @model_validator(mode="after")
    def _parameters(self) -> DistSpec:
        needed = DIST_PARAMS[self.dist]
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for dist = {self.dist!r}")
        for name in ("value", "mean", "median", "sigma", "std", "low", "high"):
            if name not in needed and getattr(self, name) is not None:
                raise ValueError(
                    f"{name}: not a parameter of dist = {self.dist!r} "
                    f"(it takes {', '.join(needed)})"
                )
        if self.dist == "uniform" and self.low > self.high:
            raise ValueError(f"low: {self.low} is above high {self.high}")
        return self


def _dist(value: object) -> object:
    # A bare number in TOML means a constant: `ttft_s = 0.5`.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return DistSpec("const", value=float(value))
    return value


@dataclass(frozen=True, config=CONFIG)
class VolumeTier:
    """From `above_mtok` million tokens per billing month on, token prices are multiplied by `factor`."""

    above_mtok: Annotated[Num, Field(ge=0, le=1e9)]
    factor: Annotated[Num, Field(ge=0, le=1)]


DEFAULT_ENGINE_PROFILE = "vllm-v1"


@dataclass(frozen=True, config=CONFIG)
class SpeculativeConfig:
    """`engine.speculative = {...}`: speculative decoding (docs/speculative.md). Each decode step
    drafts `k` tokens per sequence and verifies them in one target step of k + 1 tokens each; a
    sequence advances by (1 - a^(k+1)) / (1 - a) tokens on average (Leviathan et al. 2023)."""

    method: Annotated[
        Literal["draft", "mtp"],
        Field(
            description='"draft": a separate draft model (`draft_model`) run k times per step; "mtp": draft heads inside the model (multi-token prediction, EAGLE, Medusa), each proposal costing `draft_cost_frac` of a target decode step'
        ),
    ] = "draft"
    k: Annotated[Int, Field(ge=1, le=16, description="tokens proposed per sequence per step")] = 4
    acceptance: Annotated[Num, Field(ge=0, le=0.99, description="per-token acceptance rate a; unset = the method's literature default (sim/perf/data/speculative.toml)")] | None = None  # fmt: skip
    draft_model: Annotated[Str, Field(min_length=1, max_length=200, description='perf catalog name of the draft model (method = "draft")')] | None = None  # fmt: skip
    draft_cost_frac: Annotated[Num, Field(gt=0, le=1, description='method = "mtp": one proposal\'s cost as a fraction of a target decode step; unset = 1 / layers (one extra decoder layer, as DeepSeek-V3\'s MTP module and EAGLE\'s draft head)')] | None = None  # fmt: skip

    @model_validator(mode="after")
    def _draft(self) -> SpeculativeConfig:
        if self.method == "draft" and self.draft_model is None:
            raise ValueError('draft_model: required with method = "draft"')
        if self.method == "draft" and self.draft_cost_frac is not None:
            raise ValueError('draft_cost_frac: only for method = "mtp" (a draft model is costed by the perf model)')  # fmt: skip
        if self.method == "mtp" and self.draft_model is not None:
            raise ValueError('draft_model: only for method = "draft"')
        return self


@dataclass(frozen=True, config=CONFIG)
class EngineConfig:
    """How one replica batches (vLLM-like continuous batching)."""

    max_batch_seqs: Annotated[Int, Field(ge=1, le=65_536, description="most sequences in one step")] = 256  # fmt: skip
    max_batched_tokens: Annotated[Int, Field(ge=1, le=10_000_000, description="prefill + decode tokens in one step")] = 8192  # fmt: skip
    chunked_prefill: Annotated[Bool, Field(description="split long prompts across steps")] = True
    mem_util: Annotated[Num, Field(gt=0, le=1, description="fraction of GPU memory for weights + KV cache")] = 0.9  # fmt: skip
    router: Annotated[
        Literal["round_robin", "least_outstanding", "jsq", "prefix_affinity"],
        Field(
            description="\"prefix_affinity\" (needs prefix_cache = true): the replica scoring highest on prefix_weight x share of the prompt cached there + load_weight x min-max normalised spare load, as llm-d's and BLIS's weighted scorers"
        ),
    ] = "least_outstanding"
    prefix_cache: Annotated[
        Bool | None,
        Field(
            description="true: each replica keeps an LRU prefix cache of KV blocks in its own "
            "KV memory (hits skip prefill; needs prefix identity in the workload); false: no "
            "reuse, every prompt token is prefilled (vLLM with caching off); unset: the "
            "workload's cached-token count (Mooncake hash_ids as one infinite cache shared by "
            "all replicas, the behaviour before this option; 0 for traces without it)"
        ),
    ] = None
    block_tokens: Annotated[Int, Field(ge=1, le=4096, description="tokens per KV block of the prefix cache (vLLM's default is 16)")] = 16  # fmt: skip
    affinity_prefix_weight: Annotated[Num, Field(ge=0, le=1000, description='router = "prefix_affinity": weight of the cached share of the prompt (llm-d default profile: 3)')] = 3.0  # fmt: skip
    affinity_load_weight: Annotated[Num, Field(ge=0, le=1000, description='router = "prefix_affinity": weight of the spare-load score (llm-d default profile: queue scorer 2)')] = 2.0  # fmt: skip
    service: Annotated[
        Literal["physics", "exponential"],
        Field(description='"physics" (step-time model) or "exponential" (M/M/c validation)'),
    ] = "physics"
    service_mean_s: Annotated[Num, Field(gt=0, le=86_400, description='mean service time with service = "exponential"')] | None = None  # fmt: skip
    max_queue: Annotated[Int, Field(ge=0, le=100_000_000, description="requests waiting beyond this are dropped (unset = unbounded)")] | None = None  # fmt: skip
    profile: Annotated[
        Str,
        Field(
            min_length=1,
            max_length=1000,
            description='step-time constants: a shipped engine profile ("vllm-0.5", "vllm-0.6", '
            '"vllm-v1", "sglang", "trtllm"; sim/perf/data/profiles) or the path of a profile TOML '
            "that `sim calibrate --fit` wrote",
        ),
    ] = DEFAULT_ENGINE_PROFILE
    speculative: Annotated[SpeculativeConfig | None, Field(description="speculative decoding (docs/speculative.md); unset = off")] = None  # fmt: skip

    @model_validator(mode="after")
    def _service(self) -> EngineConfig:
        if self.service == "exponential" and self.service_mean_s is None:
            raise ValueError('service_mean_s: required with service = "exponential"')
        if self.service == "exponential" and self.speculative is not None:
            raise ValueError('speculative: needs service = "physics" (it changes the step times)')
        if self.router == "prefix_affinity" and self.prefix_cache is not True:
            raise ValueError('router: "prefix_affinity" needs prefix_cache = true')
        if self.service == "exponential" and self.prefix_cache:
            raise ValueError('prefix_cache: not modelled with service = "exponential"')
        return self


UsdPerMtok = Annotated[Num, Field(ge=0, le=MAX_USD_PER_MTOK)]


@dataclass(frozen=True, config=CONFIG)
class ApiFleetConfig:
    """A metered API. Prices per million tokens; None = look up provider/model in the warehouse."""

    name: Name
    kind: Literal["api"] = "api"
    provider: Str = "openai"
    model: Annotated[Str, Field(description="the provider's model id used for the price lookup")] = ""  # fmt: skip
    price_usd_per_mtok_input: UsdPerMtok | None = None
    price_usd_per_mtok_output: UsdPerMtok | None = None
    price_usd_per_mtok_cached_input: UsdPerMtok | None = None
    price_usd_per_mtok_cache_write: Annotated[UsdPerMtok, Field(description='cache-write price (prompt_cache = "provider" with explicit caching); unset = the warehouse\'s, else input x the rules\' write multiplier')] | None = None  # fmt: skip
    price_usd_per_request: Annotated[Num, Field(ge=0, le=100)] = 0.0
    prompt_cache: Annotated[
        Literal["trace", "provider", "off"] | None,
        Field(
            description='which prompt tokens are billed as cached: "trace" (the workload\'s '
            'cached-token count, one infinite cache; the behaviour when unset), "provider" '
            "(the provider's rules in sim/data/prompt_caching.toml: minimum prefix, lifetime "
            'refreshed on use, cache writes; needs prefix identity in the workload), "off" (none)'
        ),
    ] = None
    prompt_cache_rules: Annotated[Str, Field(min_length=1, max_length=64, description='prompt_cache = "provider": whose rules (unset = this fleet\'s provider), e.g. "anthropic" for a Bedrock Claude')] | None = None  # fmt: skip
    prompt_cache_ttl_s: Annotated[Num, Field(gt=0, le=86_400, description='prompt_cache = "provider": a cache lifetime the provider offers (Anthropic: 300 or 3600); unset = its default')] | None = None  # fmt: skip
    allow_free: Annotated[Bool, Field(description="a warehouse price of 0 is a free tier, refused as a cost unless this says it is meant")] = False  # fmt: skip
    volume_tiers: list[VolumeTier] = field(default_factory=list)
    batch: Annotated[Bool, Field(description="use the batch API (discounted, latency in hours)")] = False  # fmt: skip
    batch_discount: Annotated[Fraction, Field(description="fraction of the price paid with batch = true")] = 0.5  # fmt: skip
    batch_latency_s: DistSpec = field(
        default_factory=lambda: DistSpec("uniform", low=600, high=86400)
    )
    # At least one request per 100 minutes: a smaller limit is a typo, and with retries it would
    # push backoff times past any horizon.
    rpm_limit: Annotated[Num, Field(ge=0.01, le=1e9, description="requests per minute (token bucket); unset = unlimited")] | None = None  # fmt: skip
    tpm_limit: Annotated[Num, Field(ge=1, le=1e12, description="input + output tokens per minute")] | None = None  # fmt: skip
    max_retries: Annotated[Int, Field(ge=0, le=100_000, description="client retries on throttling, then the request fails")] = 5  # fmt: skip
    backoff_base_s: Annotated[Num, Field(gt=0, le=3600, description="exponential backoff base with full jitter")] = 1.0  # fmt: skip
    backoff_max_s: Annotated[Num, Field(gt=0, le=86_400)] = 60.0
    network_rtt_s: DistSpec = field(
        default_factory=lambda: DistSpec("lognormal", median=0.08, sigma=0.3)
    )
    ttft_s: DistSpec = field(default_factory=lambda: DistSpec("lognormal", median=0.5, sigma=0.5))
    output_tokens_per_s: DistSpec = field(
        default_factory=lambda: DistSpec("lognormal", median=60.0, sigma=0.3)
    )

    _dists = field_validator(
        "batch_latency_s", "network_rtt_s", "ttft_s", "output_tokens_per_s", mode="before"
    )(_dist)

    @field_validator("output_tokens_per_s")
    @classmethod
    def _speed(cls, value: DistSpec) -> DistSpec:
        if value.dist == "const" and value.value == 0:
            raise ValueError("must be positive: an API that streams 0 tokens/s never finishes")
        if value.dist == "uniform" and value.low == 0:
            raise ValueError("low must be positive: an API that streams 0 tokens/s never finishes")
        return value

    @model_validator(mode="after")
    def _priced(self) -> ApiFleetConfig:
        if (
            self.price_usd_per_mtok_input is None or self.price_usd_per_mtok_output is None
        ) and not self.model:
            raise ValueError(
                "model: needed to look up prices (or set price_usd_per_mtok_input and _output)"
            )
        return self


def _power_of_two(tp: int) -> int:
    if tp & (tp - 1):
        raise ValueError(f"tensor parallelism must be a power of two, got {tp}")
    return tp


TensorParallel = Annotated[Int, Field(ge=1, le=64, description="tensor-parallel GPUs per replica")]
Precision = Literal["bf16", "fp16", "fp8", "int8", "int4"]
GpuName = Annotated[Str, Field(min_length=1, max_length=64, description="GPU catalog name (sim perf --list)")]  # fmt: skip


KvLink = Literal["nvlink", "infiniband", "roce", "pcie"]
KV_LINK_HELP = (
    "link the KV cache crosses from a prefill to a decode replica; its default bandwidth and "
    "latency come from sim/perf/data/links.toml"
)
# The link keys of a disaggregated fleet, the same on cloud and self-hosted fleets.
KvLinkKind = Annotated[KvLink, Field(description=KV_LINK_HELP)]
KvLinkGbps = Annotated[Num, Field(gt=0, le=1e6, description="GB/s from one prefill to one decode replica; unset = the kv_link's per-GPU figure x the smaller pool's tp")] | None  # fmt: skip
KvLinkLatency = Annotated[Num, Field(ge=0, le=60, description="fixed time per KV transfer; unset = the kv_link's")] | None  # fmt: skip


@dataclass(frozen=True, config=CONFIG)
class CloudPoolConfig:
    """`[fleet.prefill]` / `[fleet.decode]` of a disaggregated cloud fleet: the keys in which this
    pool differs from its fleet (docs/disaggregation.md). A pool naming another GPU or offer
    (gpu, provider, instance, region, term) is priced on its own, not at the fleet's price."""

    gpu: GpuName | None = None
    tp: TensorParallel | None = None
    precision: Precision | None = None
    provider: Str | None = None
    instance: Str | None = None
    region: Str | None = None
    term: Str | None = None
    gpus_per_instance: Annotated[Int, Field(ge=1, le=64)] | None = None
    price_usd_per_hour: Annotated[Num, Field(ge=MIN_USD_PER_HOUR, le=MAX_USD_PER_HOUR, description="per instance")] | None = None  # fmt: skip
    min_replicas: Annotated[Int, Field(ge=0, le=10_000)] | None = None
    max_replicas: Annotated[Int, Field(ge=1, le=10_000)] | None = None
    initial_replicas: Annotated[Int, Field(ge=0, le=10_000)] | None = None
    policy: Literal["inflight", "queue", "rate"] | None = None
    target: Annotated[Num, Field(gt=0, le=1e6)] | None = None
    engine: Annotated[EngineConfig | None, Field(description="replaces the fleet's engine table for this pool")] = None  # fmt: skip


@dataclass(frozen=True, config=CONFIG)
class SelfHostedPoolConfig:
    """`[fleet.prefill]` / `[fleet.decode]` of a disaggregated self-hosted fleet: the keys in
    which this pool's servers differ from the fleet's. A pool naming another `gpu` is priced on
    its own."""

    gpu: GpuName | None = None
    servers: Annotated[Int, Field(ge=1, le=10_000)] | None = None
    gpus_per_server: Annotated[Int, Field(ge=1, le=64)] | None = None
    tp: TensorParallel | None = None
    precision: Precision | None = None
    gpu_price_usd: Annotated[Num, Field(gt=0, le=1e6, description="per GPU")] | None = None  # fmt: skip
    engine: Annotated[EngineConfig | None, Field(description="replaces the fleet's engine table for this pool")] = None  # fmt: skip


# A pool that names another offer does not inherit the fleet's price of its own offer.
_OFFER_KEYS = {"cloud": ("gpu", "provider", "instance", "region", "term"), "self_hosted": ("gpu",)}
_PRICE_KEYS = {
    "cloud": ("price_usd_per_hour", "gpus_per_instance", "fallback_price_usd_per_hour"),
    "self_hosted": ("gpu_price_usd",),
}
POOLS = ("prefill", "decode")


def is_disaggregated(cfg: object) -> bool:
    return getattr(cfg, "decode", None) is not None


def pool_config(cfg, which: str):
    """The full fleet config of one pool ("prefill" or "decode") of a disaggregated fleet: the
    fleet's keys with the pool's own on top (validated again as a fleet)."""
    import dataclasses

    pool = getattr(cfg, which)
    changes = {f.name: getattr(pool, f.name) for f in dataclasses.fields(pool)}
    changes = {k: v for k, v in changes.items() if v is not None}
    if any(k in changes for k in _OFFER_KEYS[cfg.kind]):
        for key in _PRICE_KEYS[cfg.kind]:
            changes.setdefault(key, None)
    # The link is the fleet's, not a pool's.
    link = {"kv_link_gbps": None, "kv_link_latency_s": None}
    return dataclasses.replace(cfg, prefill=None, decode=None, **link, **changes)


def serving_groups(cfg) -> list[tuple[str, object]]:
    """(label, config) of each group of identical replicas of a GPU fleet: the fleet itself, or
    its prefill and decode pools."""
    if is_disaggregated(cfg):
        return [(which, pool_config(cfg, which)) for which in POOLS]
    return [("", cfg)]


def _check_pools(cfg):
    """A disaggregated fleet: both pools, each a valid fleet, on the physics model."""
    from pydantic import ValidationError

    for which in POOLS:
        if getattr(cfg, which) is None:
            raise ValueError(f"{which}: a disaggregated fleet needs both [fleet.prefill] and [fleet.decode]")  # fmt: skip
        try:
            pool = pool_config(cfg, which)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise ValueError(f"{which}.{loc}: {msg}" if loc else f"{which}: {msg}") from None  # fmt: skip
        if pool.engine.service != "physics":
            raise ValueError(f'{which}.engine.service: a disaggregated fleet needs "physics"')
        if getattr(pool, "spot_preemptions_per_hour", 0.0) > 0:
            raise ValueError(f"{which}: spot preemptions are not modelled in a disaggregated fleet (docs/disaggregation.md)")  # fmt: skip
        if getattr(pool, "overflow", None) is not None:
            raise ValueError("overflow: not modelled for a disaggregated fleet (docs/disaggregation.md)")  # fmt: skip
        if pool.engine.prefix_cache is True:
            raise ValueError(f"{which}.engine.prefix_cache: per-replica prefix caches are not modelled in a disaggregated fleet yet (docs/disaggregation.md)")  # fmt: skip
    return cfg


def _check_link(cfg):
    if not is_disaggregated(cfg) and getattr(cfg, "prefill", None) is None:
        for key in ("kv_link_gbps", "kv_link_latency_s"):
            if getattr(cfg, key) is not None:
                raise ValueError(f"{key}: only for a disaggregated fleet ([fleet.prefill] and [fleet.decode])")  # fmt: skip
        return None
    return _check_pools(cfg)


@dataclass(frozen=True, config=CONFIG)
class CloudFleetConfig:
    """Autoscaled cloud GPU replicas. A replica = tp / gpus_per_instance instances of `instance`."""

    name: Name
    kind: Literal["cloud"] = "cloud"
    gpu: GpuName = "h100-sxm"
    tp: TensorParallel = 1
    precision: Annotated[Precision | None, Field(description="unset = the scenario's [model] precision")] = None  # fmt: skip
    provider: Annotated[Str, Field(description="price lookup in the warehouse")] = "aws"
    instance: Annotated[Str, Field(description="instance type / SKU for the price lookup")] = ""
    region: Annotated[Str, Field(description='"" = cheapest region at the price date, ties to US, then Europe (docs/pricing.md); a name pins it; a glob such as "us-*" restricts the choice')] = ""  # fmt: skip
    term: Annotated[Str, Field(description='"on_demand", "spot", or a commitment billed for its whole span: reserved_1y, reserved_3y_all_upfront, committed_1y, ... (sim/engine/billing.py)')] = "on_demand"  # fmt: skip
    gpus_per_instance: Annotated[Int, Field(ge=1, le=64, description="unset = from the warehouse offer")] | None = None  # fmt: skip
    price_usd_per_hour: Annotated[Num, Field(ge=MIN_USD_PER_HOUR, le=MAX_USD_PER_HOUR, description="per instance; unset = from the warehouse")] | None = None  # fmt: skip
    min_replicas: Annotated[Int, Field(ge=0, le=10_000)] = 0
    max_replicas: Annotated[Int, Field(ge=1, le=10_000)] = 8
    initial_replicas: Annotated[Int, Field(ge=0, le=10_000)] = 1
    policy: Literal["inflight", "queue", "rate"] = "inflight"
    target: Annotated[Num, Field(gt=0, le=1e6, description="in-flight per replica, queued per replica, or requests/s per replica")] = 32.0  # fmt: skip
    # Real autoscalers decide every 15-60 s (KEDA polls every 30 s by default); below 1 s the
    # decision process alone would dominate the event count.
    decision_interval_s: Annotated[Num, Field(ge=1, le=86_400)] = 20.0
    upscale_delay_s: Annotated[Seconds, Field(description="the condition must hold this long before scaling up")] = 60.0  # fmt: skip
    downscale_delay_s: Annotated[Seconds, Field(description="... before scaling down")] = 600.0
    provision_s: DistSpec = field(default_factory=lambda: DistSpec("normal", mean=240.0, std=30.0))
    weight_load_gbps: Annotated[Num, Field(ge=0.01, le=1000, description="GB/s from storage into GPU memory (cold start = provision + load)")] = 2.0  # fmt: skip
    billing: Literal["per_second", "per_hour"] = "per_second"
    min_billed_s: Annotated[Num, Field(ge=0, le=86_400)] = 60.0
    spot_preemptions_per_hour: Annotated[Num, Field(ge=0, le=100, description='per replica, with term = "spot"')] = 0.0  # fmt: skip
    spot_warning_s: Annotated[Num, Field(ge=0, le=3600)] = 120.0
    fallback_on_demand: Annotated[Bool, Field(description="replace preempted spot replicas with on-demand ones")] = False  # fmt: skip
    fallback_price_usd_per_hour: Annotated[Num, Field(ge=MIN_USD_PER_HOUR, le=MAX_USD_PER_HOUR)] | None = None  # fmt: skip
    engine: EngineConfig = field(default_factory=EngineConfig)
    prefill: Annotated[CloudPoolConfig | None, Field(description="disaggregation: the prefill pool (docs/disaggregation.md)")] = None  # fmt: skip
    decode: Annotated[CloudPoolConfig | None, Field(description="disaggregation: the decode pool")] = None  # fmt: skip
    kv_link: KvLinkKind = "infiniband"
    kv_link_gbps: KvLinkGbps = None
    kv_link_latency_s: KvLinkLatency = None

    _tp = field_validator("tp")(_power_of_two)
    _dists = field_validator("provision_s", mode="before")(_dist)

    @field_validator("term")
    @classmethod
    def _term(cls, term: str) -> str:
        from sim.engine.billing import PAY_AS_YOU_GO_TERMS, is_commitment, term_years

        known = term in PAY_AS_YOU_GO_TERMS or (is_commitment(term) and term_years(term))
        if not known:
            raise ValueError(
                f"must be one of {', '.join(PAY_AS_YOU_GO_TERMS)} or a commitment such as "
                f"reserved_1y, reserved_3y_all_upfront, committed_1y; got {term[:200]!r}"
            )
        return term

    @model_validator(mode="after")
    def _replicas(self) -> CloudFleetConfig:
        if _check_link(self) is not None:
            return self  # each pool is checked as a fleet of its own
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas: {self.min_replicas} is above max_replicas {self.max_replicas}"
            )
        if not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError(
                "initial_replicas: must lie in [min_replicas, max_replicas] = "
                f"[{self.min_replicas}, {self.max_replicas}]"
            )
        if self.price_usd_per_hour is None and not self.instance:
            raise ValueError("instance: needed to look up the price (or set price_usd_per_hour)")
        if self.gpus_per_instance is None and not self.instance:
            raise ValueError("gpus_per_instance: needed when no instance is named to look it up")
        if self.max_replicas * self.tp > MAX_GPUS:
            raise ValueError(f"max_replicas: {self.max_replicas} x tp {self.tp} is over {MAX_GPUS} GPUs")  # fmt: skip
        return self


@dataclass(frozen=True, config=CONFIG)
class SelfHostedFleetConfig:
    """Fixed servers you own. Capex amortised straight-line; power and colocation by time."""

    name: Name
    kind: Literal["self_hosted"] = "self_hosted"
    gpu: GpuName = "h100-sxm"
    servers: Annotated[Int, Field(ge=1, le=10_000)] = 1
    gpus_per_server: Annotated[Int, Field(ge=1, le=64)] = 8
    tp: Annotated[TensorParallel, Field(description="GPUs per replica; replicas = servers * gpus_per_server // tp")] = 8  # fmt: skip
    precision: Precision | None = None
    gpu_price_usd: Annotated[Num, Field(gt=0, le=1e6, description="per GPU; unset = from the warehouse (gpu_purchase)")] | None = None  # fmt: skip
    server_price_usd: Annotated[Num, Field(ge=0, le=1e7, description="chassis, CPUs, RAM, NICs per server, without GPUs")] = 60000.0  # fmt: skip
    # Accounting lives of IT hardware are 3-6 years; 0.5-30 admits any real plan.
    lifetime_years: Annotated[Num, Field(ge=0.5, le=30)] = 4.0
    residual_frac: Annotated[Fraction, Field(description="value left at end of life, fraction of capex")] = 0.1  # fmt: skip
    cost_of_capital: Annotated[Fraction, Field(description="annual rate; > 0 uses an annuity instead of straight-line")] = 0.0  # fmt: skip
    host_power_w: Annotated[Num, Field(ge=0, le=100_000, description="per server, beyond the GPUs")] = 1500.0  # fmt: skip
    pue: Annotated[Num, Field(ge=1, le=5, description="power usage effectiveness (>= 1)")] = 1.3
    electricity_usd_per_kwh: Annotated[Num, Field(ge=0, le=10)] = 0.13
    colo_usd_per_month: Annotated[Num, Field(ge=0, le=1e6, description="per server: space, network, operations")] = 2000.0  # fmt: skip
    overflow: Annotated[ApiFleetConfig | None, Field(description="hybrid: send requests here when the queue is long")] = None  # fmt: skip
    overflow_queue_threshold: Annotated[Int, Field(ge=0, le=1_000_000, description="queued requests per replica before overflowing")] = 64  # fmt: skip
    engine: EngineConfig = field(default_factory=EngineConfig)
    prefill: Annotated[SelfHostedPoolConfig | None, Field(description="disaggregation: the prefill pool (docs/disaggregation.md)")] = None  # fmt: skip
    decode: Annotated[SelfHostedPoolConfig | None, Field(description="disaggregation: the decode pool")] = None  # fmt: skip
    kv_link: KvLinkKind = "infiniband"
    kv_link_gbps: KvLinkGbps = None
    kv_link_latency_s: KvLinkLatency = None

    _tp = field_validator("tp")(_power_of_two)

    @field_validator("overflow", mode="before")
    @classmethod
    def _overflow(cls, value: object) -> object:
        if isinstance(value, dict):
            value = dict(value)
            kind = value.pop("kind", "api")
            if kind != "api":
                raise ValueError(f"overflow must be an api fleet, got kind = {kind!r}")
            value.setdefault("name", "overflow")
        return value

    @model_validator(mode="after")
    def _split(self) -> SelfHostedFleetConfig:
        if _check_link(self) is not None:
            return self  # each pool is checked as a fleet of its own
        gpus = self.servers * self.gpus_per_server
        if gpus > MAX_GPUS:
            raise ValueError(f"servers: {self.servers} x {self.gpus_per_server} GPUs is over {MAX_GPUS}")  # fmt: skip
        if self.tp > gpus or gpus % self.tp:
            raise ValueError(
                f"tp: {self.servers} x {self.gpus_per_server} GPUs do not split into replicas of "
                f"tp = {self.tp}"
            )
        return self


FleetConfig = ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig
FLEET_CLASSES: dict[str, type] = {
    "api": ApiFleetConfig,
    "cloud": CloudFleetConfig,
    "self_hosted": SelfHostedFleetConfig,
}
FLEET_KINDS = tuple(FLEET_CLASSES)


def is_safe_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None
