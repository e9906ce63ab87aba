"""Configuration of the three fleet kinds: one dataclass each, with a `kind` field and help beside
every field. The scenario loader (sim/scenario.py) fills these from TOML `[[fleet]]` tables by field
name, rejecting unknown keys; prices left as None are resolved from the warehouse before a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DistSpec:
    """A positive random quantity: `{dist = "lognormal", median = 0.3, sigma = 0.4}` in TOML.

    dist: "const" (value), "exponential" (mean), "lognormal" (median, sigma),
          "uniform" (low, high), "normal" (mean, std; truncated at 0).
    """

    dist: str = "const"
    value: float | None = None
    mean: float | None = None
    median: float | None = None
    sigma: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class VolumeTier:
    """From `above_mtok` million tokens per billing month on, token prices are multiplied by `factor`."""

    above_mtok: float
    factor: float


@dataclass(frozen=True)
class EngineConfig:
    """How one replica batches (vLLM-like continuous batching)."""

    max_batch_seqs: int = 256  # most sequences in one step
    max_batched_tokens: int = 8192  # prefill + decode tokens in one step
    chunked_prefill: bool = True  # split long prompts across steps
    mem_util: float = 0.9  # fraction of GPU memory for weights + KV cache
    router: str = "least_outstanding"  # "round_robin" | "least_outstanding" | "jsq"
    service: str = "physics"  # "physics" (step-time model) | "exponential" (M/M/c validation)
    service_mean_s: float | None = None  # with service = "exponential": mean service time
    max_queue: int | None = None  # requests waiting beyond this are dropped (None = unbounded)


@dataclass(frozen=True)
class ApiFleetConfig:
    """A metered API. Prices per million tokens; None = look up provider/model in the warehouse."""

    name: str
    kind: str = "api"
    provider: str = "openai"
    model: str = ""  # the provider's model id used for the price lookup
    price_usd_per_mtok_input: float | None = None
    price_usd_per_mtok_output: float | None = None
    price_usd_per_mtok_cached_input: float | None = None
    price_usd_per_request: float = 0.0
    # A warehouse price of 0 is a free tier, refused as a cost unless this says it is meant.
    allow_free: bool = False
    volume_tiers: list[VolumeTier] = field(default_factory=list)
    batch: bool = False  # use the batch API (discounted, latency in hours)
    batch_discount: float = 0.5  # fraction of the price paid with batch = true
    batch_latency_s: DistSpec = field(
        default_factory=lambda: DistSpec("uniform", low=600, high=86400)
    )
    rpm_limit: float | None = None  # requests per minute (token bucket); None = unlimited
    tpm_limit: float | None = None  # input + output tokens per minute
    max_retries: int = 5  # client retries on throttling, then the request fails
    backoff_base_s: float = 1.0  # exponential backoff base with full jitter
    backoff_max_s: float = 60.0
    network_rtt_s: DistSpec = field(
        default_factory=lambda: DistSpec("lognormal", median=0.08, sigma=0.3)
    )
    ttft_s: DistSpec = field(default_factory=lambda: DistSpec("lognormal", median=0.5, sigma=0.5))
    output_tokens_per_s: DistSpec = field(
        default_factory=lambda: DistSpec("lognormal", median=60.0, sigma=0.3)
    )


@dataclass(frozen=True)
class CloudFleetConfig:
    """Autoscaled cloud GPU replicas. A replica = `instances_per_replica` instances of `instance`."""

    name: str
    kind: str = "cloud"
    gpu: str = "h100-sxm"  # GPU catalog name (sim/perf)
    tp: int = 1  # tensor-parallel GPUs per replica
    precision: str | None = None  # None = the scenario's [model] precision
    provider: str = "aws"  # price lookup in the warehouse
    instance: str = ""  # instance type / SKU for the price lookup
    region: str = ""  # "" = cheapest region at the price date
    term: str = "on_demand"  # "on_demand" | "spot"
    gpus_per_instance: int | None = None  # None = from the warehouse offer
    price_usd_per_hour: float | None = None  # per instance; None = from the warehouse
    min_replicas: int = 0
    max_replicas: int = 8
    initial_replicas: int = 1
    policy: str = "inflight"  # "inflight" | "queue" | "rate"
    target: float = 32.0  # in-flight per replica, queued per replica, or requests/s per replica
    decision_interval_s: float = 20.0
    upscale_delay_s: float = 60.0  # the condition must hold this long before scaling up
    downscale_delay_s: float = 600.0  # ... before scaling down
    provision_s: DistSpec = field(default_factory=lambda: DistSpec("normal", mean=240.0, std=30.0))
    # GB/s from storage into GPU memory (cold start = provision + load)
    weight_load_gbps: float = 2.0
    billing: str = "per_second"  # "per_second" | "per_hour"
    min_billed_s: float = 60.0
    spot_preemptions_per_hour: float = 0.0  # per replica, with term = "spot"
    spot_warning_s: float = 120.0
    fallback_on_demand: bool = False  # replace preempted spot replicas with on-demand ones
    fallback_price_usd_per_hour: float | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)


@dataclass(frozen=True)
class SelfHostedFleetConfig:
    """Fixed servers you own. Capex amortised straight-line; power and colocation by time."""

    name: str
    kind: str = "self_hosted"
    gpu: str = "h100-sxm"
    servers: int = 1
    gpus_per_server: int = 8
    tp: int = 8  # GPUs per replica; replicas = servers * gpus_per_server // tp
    precision: str | None = None
    gpu_price_usd: float | None = None  # per GPU; None = from the warehouse (gpu_purchase)
    server_price_usd: float = 60000.0  # chassis, CPUs, RAM, NICs per server, without GPUs
    lifetime_years: float = 4.0
    residual_frac: float = 0.1  # value left at end of life, fraction of capex
    cost_of_capital: float = 0.0  # annual rate; > 0 uses an annuity instead of straight-line
    host_power_w: float = 1500.0  # per server, beyond the GPUs
    pue: float = 1.3
    electricity_usd_per_kwh: float = 0.13
    colo_usd_per_month: float = 2000.0  # per server: space, network, operations
    overflow: ApiFleetConfig | None = None  # hybrid: send requests here when queue is long
    overflow_queue_threshold: int = 64  # queued requests per replica before overflowing
    engine: EngineConfig = field(default_factory=EngineConfig)


FleetConfig = ApiFleetConfig | CloudFleetConfig | SelfHostedFleetConfig
FLEET_CLASSES: dict[str, type] = {
    "api": ApiFleetConfig,
    "cloud": CloudFleetConfig,
    "self_hosted": SelfHostedFleetConfig,
}
