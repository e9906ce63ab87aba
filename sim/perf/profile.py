"""Memory and step-time model of one serving replica (a model on a tensor-parallel GPU group).

Pure arithmetic, no SimPy: the engine calls `ServingProfile.step_time_s` once per batch step, so
it is plain float math on constants precomputed in `build_profile`. The efficiencies (class
Calibration) are fitted in `sim/perf/calibration.py`; docs/calibration.md lists fit and error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.errors import InputError
from sim.perf.catalog import GpuSpec, ModelSpec, load_gpu, load_model
from sim.perf.precision import Precision, get_precision

GIB = 1024**3


@dataclass(frozen=True)
class Calibration:
    """Constants of the step-time model for one serving engine (an "engine profile").

    The shipped profiles live in sim/perf/data/profiles/*.toml (`load_engine_profile`), each
    naming the measurements it was fitted on; docs/calibration.md explains every term. These
    defaults are the `vllm-v1` profile's values before its fit, kept so a bare Calibration()
    is a sensible engine.
    """

    name: str = "default"
    # Linear layers (GEMMs): roofline of weight streaming against tensor-core throughput.
    gemm_bw_eff: float = 0.80  # achieved fraction of HBM bandwidth streaming weights
    gemm_compute_eff: float = 0.65  # achieved fraction of peak tensor FLOPS in large GEMMs
    # Attention kernels, separately: decode reads the KV cache, prefill is FLOP-bound.
    attn_bw_eff: float = 0.70  # achieved fraction of HBM bandwidth reading KV blocks
    attn_compute_eff: float = 0.45  # achieved fraction of peak FLOPS in prefill attention
    # CPU work per step (scheduling, input preparation, sampling, detokenising) and its overlap.
    step_overhead_s: float = 0.6e-3  # per step
    per_seq_overhead_s: float = 8e-6  # per decoding sequence per step
    cpu_overlap: float = 0.0  # fraction of the CPU time hidden behind GPU work (async scheduling)
    # CUDA graphs: steps of at most this many tokens replay a captured graph; larger ones run
    # eagerly and pay a launch cost per layer. v0-era engines graph only decode-only steps.
    cuda_graph_max_tokens: int = 512
    cuda_graph_decode_only: bool = False
    eager_launch_s_per_layer: float = 40e-6
    # Tensor-parallel all-reduce (two per layer): per call latency + ring transfer of the
    # activations. Over NVLink, messages up to custom_ar_max_bytes use the engine's custom
    # all-reduce when it has one; larger ones (and engines without) use NCCL.
    custom_allreduce: bool = True
    custom_ar_max_bytes: float = 8 * 1024 * 1024
    custom_ar_latency_s: float = 6e-6  # per call, plus custom_ar_latency_per_peer_s per peer
    custom_ar_latency_per_peer_s: float = 1e-6
    nccl_latency_s: float = 25e-6  # per NCCL all-reduce call over NVLink / xGMI
    pcie_latency_s: float = 45e-6  # per all-reduce call over PCIe (through host bridges)
    allreduce_link_eff: float = 0.7  # achieved fraction of the link bandwidth in the ring
    kv_block_tokens: int = 16  # paged KV cache block size: each sequence reads whole blocks
    # "evict": admit while KV lasts and preempt (recompute) when decodes outgrow it (vLLM,
    # SGLang); "no_evict": admit only when prompt + output fit (TensorRT-LLM's default
    # GUARANTEED_NO_EVICT). The replica implements "evict"; `sim calibrate` emulates "no_evict"
    # by capping the batch at the KV capacity over the requests' mean total length.
    kv_admission: str = "evict"
    # Request-level terms outside the step loop, applied by `sim calibrate`'s replay (the fleet
    # engine does not add them yet): the server front end (HTTP, tokenisation, detokenisation)
    # per request, and the mean number of steps a new request waits for the engine's running
    # schedule (vLLM 0.6 multi-step scheduling with N steps: about N / 2).
    frontend_s_per_request: float = 0.0
    sched_wait_steps: float = 0.0


DEFAULT_CALIBRATION = Calibration()
DEFAULT_ENGINE_PROFILE = "vllm-v1"
# Memory-bound decode draws this fraction of the way from idle to board power (Splitwise: A100
# 0.55, H100 0.49); see ServingProfile.mix_power_w.
DECODE_POWER_FRAC = 0.5
# Links at least this fast per GPU are NVLink / xGMI class (the slowest, A100's NVLink 3, is
# 300 GB/s); below it the TP group talks over PCIe.
NVLINK_MIN_GBPS = 100.0

# Memory kept for activations besides weights and KV cache, per GPU: CUDA graphs and workspace,
# plus the intermediate tensors of one `MAX_BATCHED_TOKENS` step and the logits of a full batch.
RUNTIME_RESERVE_BYTES = 1.0 * GIB
MAX_BATCHED_TOKENS = 8192
MAX_BATCH_SEQS = 256
# Without a stated context, "fits" means one sequence of this many tokens fits in the KV cache
# (engines refuse to start otherwise; operators lower max_model_len on small GPUs).
DEFAULT_FIT_CONTEXT = 8192
TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)

# 2:4 structured sparsity keeps half the weights plus 2 bits of index metadata per kept weight.
SPARSE_2_4_INDEX_BYTES_PER_WEIGHT = 0.125


def _compute_tflops(gpu: GpuSpec, precision: Precision) -> float:
    if precision.compute == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops
    if precision.compute == "int8" and gpu.int8_tops:
        return gpu.int8_tops
    return gpu.bf16_tflops


def _weight_bytes(model: ModelSpec, precision: Precision, sparse_factor: float) -> float:
    # Quantisers leave the embedding table and LM head in 16 bits.
    linear = (model.total_params - model.embedding_params) * precision.bytes_per_weight
    return linear * sparse_factor + model.embedding_params * 2.0


def _kv_shards(model: ModelSpec, tp: int) -> int:
    """Ways the per-token KV cache splits across the TP group. GQA shards by KV head and
    replicates once tp > kv_heads; an MLA latent is replicated on every rank."""
    if model.kv_bytes_per_token_override is not None:
        return 1
    return min(tp, model.kv_heads)


def kv_bytes_per_token(model: ModelSpec, precision: Precision) -> int:
    """KV-cache bytes per token for the whole model (all layers and KV heads) at the KV dtype:
    2 (K and V) x layers x kv_heads x head_dim x bytes per element; MLA uses its latent size."""
    if model.kv_bytes_per_token_override is not None:
        return int(round(model.kv_bytes_per_token_override * precision.kv_bytes_per_elem / 2.0))
    return int(2 * model.layers * model.kv_heads * model.head_dim * precision.kv_bytes_per_elem)


def runtime_reserve_bytes(model: ModelSpec, tp: int) -> float:
    """Per-GPU memory for activations of one full step and the sampler's logits."""
    ffn = max(model.ffn, model.expert_ffn * max(model.experts_per_token, 1))
    per_token = (4 * model.hidden + 2 * ffn / tp) * 2.0
    logits = MAX_BATCH_SEQS * model.vocab * 4.0 / tp
    return RUNTIME_RESERVE_BYTES + MAX_BATCHED_TOKENS * per_token + logits


def _kv_capacity(model, gpu, tp, precision, mem_util, weight_bytes_total) -> int:
    free_per_gpu = (
        gpu.memory_gb * GIB * mem_util - weight_bytes_total / tp - runtime_reserve_bytes(model, tp)
    )
    per_token_per_gpu = kv_bytes_per_token(model, precision) / _kv_shards(model, tp)
    return max(0, int(free_per_gpu // per_token_per_gpu))


@dataclass(frozen=True)
class ServingProfile:
    """A model served at one precision on a TP group of `tp` identical GPUs.

    kv_capacity_tokens: tokens of KV cache the whole group holds after weights and the runtime
    reserve, within mem_util of each GPU's memory. fits: one sequence of fit_context_tokens fits.
    min_gpus: smallest TP degree (power of two dividing the heads, up to 64) at which the model
    fits on this GPU; 0 if none does.
    """

    model: ModelSpec
    gpu: GpuSpec
    tp: int
    precision: Precision
    mem_util: float
    weights_bytes_total: float
    weights_bytes_per_gpu: float
    kv_bytes_per_token: int
    kv_capacity_tokens: int
    fits: bool
    min_gpus: int
    sparsity: float = 0.0
    sparse_2_4: bool = False
    fit_context_tokens: int = DEFAULT_FIT_CONTEXT
    engine: str = "default"
    kv_block_tokens: int = 16
    kv_admission: str = "evict"
    frontend_s_per_request: float = 0.0
    sched_wait_steps: float = 0.0
    # Precomputed per-GPU constants for step_time_s.
    _dense_read_bytes: float = field(default=0.0, repr=False)
    _routed_read_bytes: float = field(default=0.0, repr=False)
    _moe_miss: float = field(default=1.0, repr=False)
    _inv_gemm_bw: float = field(default=0.0, repr=False)
    _linear_flops_per_token: float = field(default=0.0, repr=False)
    _lm_head_flops: float = field(default=0.0, repr=False)
    _inv_gemm_flops: float = field(default=0.0, repr=False)
    _kv_read_per_token: float = field(default=0.0, repr=False)
    _kv_pad_tokens: float = field(default=0.0, repr=False)
    _inv_attn_bw: float = field(default=0.0, repr=False)
    _attn_s_per_pair: float = field(default=0.0, repr=False)
    _allreduces: int = field(default=0, repr=False)
    _ar_bytes_per_token: float = field(default=0.0, repr=False)
    _ar_small_max_bytes: float = field(default=0.0, repr=False)
    _ar_small_s: float = field(default=0.0, repr=False)
    _ar_large_s: float = field(default=0.0, repr=False)
    _ar_s_per_byte: float = field(default=0.0, repr=False)
    _graph_max_tokens: int = field(default=0, repr=False)
    _graph_decode_only: bool = field(default=False, repr=False)
    _eager_launch_s: float = field(default=0.0, repr=False)
    _step_overhead_s: float = field(default=0.0, repr=False)
    _per_seq_overhead_s: float = field(default=0.0, repr=False)
    _cpu_overlap: float = field(default=0.0, repr=False)

    def step_time_s(
        self,
        prefill_tokens: int = 0,
        prefill_attn_pairs: float = 0.0,
        decode_seqs: int = 0,
        decode_ctx_tokens: int = 0,
    ) -> float:
        """Seconds for one engine step, per GPU of the TP group (docs/calibration.md):
        GPU = linear layers (roofline of weight reads against GEMM FLOPs) + attention (KV reads
        for decode, FLOPs for prefill) + TP all-reduces + eager launches when the step is too
        big for a CUDA graph; CPU = per-step + per-sequence overhead, partly hidden behind the
        GPU by engines that schedule asynchronously. prefill_attn_pairs counts causal query-key
        pairs (sum over chunks of chunk_len * (past_ctx + (chunk_len + 1) / 2));
        decode_ctx_tokens is the sum of the decoding sequences' KV lengths. An empty step
        takes 0 s."""
        tokens = prefill_tokens + decode_seqs
        if tokens <= 0:
            return 0.0
        gpu_s = self._fixed_gpu_s(tokens, decode_seqs + (1 if prefill_tokens > 0 else 0))
        if prefill_tokens > 0 and self._graph_decode_only:
            gpu_s += self._eager_launch_s if tokens <= self._graph_max_tokens else 0.0
        gpu_s += (
            self._kv_read_per_token * (decode_ctx_tokens + self._kv_pad_tokens * decode_seqs)
        ) * self._inv_attn_bw
        if prefill_attn_pairs > 0.0:
            gpu_s += self._attn_s_per_pair * prefill_attn_pairs
        cpu_s = self._step_overhead_s + self._per_seq_overhead_s * decode_seqs
        return gpu_s + cpu_s - self._cpu_overlap * (gpu_s if gpu_s < cpu_s else cpu_s)

    def _fixed_gpu_s(self, tokens: int, logit_rows: int) -> float:
        """The part of a step's GPU time that depends only on its token and logit-row counts:
        linear layers, all-reduces and (above the CUDA-graph limit) eager launches."""
        weight_bytes = self._dense_read_bytes
        if self._routed_read_bytes:
            # MoE: the chance an expert is untouched by `tokens` independent routings is
            # miss**tokens.
            weight_bytes += self._routed_read_bytes * (1.0 - self._moe_miss**tokens)
        read_s = weight_bytes * self._inv_gemm_bw
        flop_s = (
            self._linear_flops_per_token * tokens + self._lm_head_flops * logit_rows
        ) * self._inv_gemm_flops
        gpu_s = read_s if read_s > flop_s else flop_s
        if self._allreduces:
            msg = self._ar_bytes_per_token * tokens
            latency = self._ar_small_s if msg <= self._ar_small_max_bytes else self._ar_large_s
            gpu_s += self._allreduces * (latency + msg * self._ar_s_per_byte)
        if tokens > self._graph_max_tokens:
            gpu_s += self._eager_launch_s
        return gpu_s

    def prefill_time_s(self, prompt_tokens: int) -> float:
        """One prompt of prompt_tokens prefilled alone in one step."""
        return self.step_time_s(
            prefill_tokens=prompt_tokens,
            prefill_attn_pairs=prompt_tokens * (prompt_tokens + 1) / 2.0,
        )

    def decode_step_s(self, batch: int, ctx_tokens: int) -> float:
        """One decode step for `batch` sequences each holding ctx_tokens of KV cache."""
        return self.step_time_s(decode_seqs=batch, decode_ctx_tokens=batch * ctx_tokens)

    def weight_load_s(self, load_gbps: float) -> float:
        """Cold start: the replica's whole checkpoint streamed at load_gbps GB/s."""
        if load_gbps <= 0:
            raise InputError("weight_load_gbps", None, "must be positive")
        return self.weights_bytes_total / (load_gbps * 1e9)

    def power_w(self, util: float) -> float:
        """Per-GPU draw: idle + util x (max - idle), util clamped to [0, 1]."""
        util = 0.0 if util < 0.0 else 1.0 if util > 1.0 else util
        return self.gpu.idle_w + util * (self.gpu.max_w - self.gpu.idle_w)

    def mix_power_w(self, prefill_frac: float) -> float:
        """Per-GPU draw while busy with a mix of work: `prefill_frac` of the busy time in
        compute-bound prefill (board power), the rest in memory-bound decode, which Splitwise
        (ISCA 2024) measured at 250 W on an A100 and 380 W on an H100: (decode - idle) /
        (max - idle) = 0.55 and 0.49, so DECODE_POWER_FRAC = 0.5 of the way from idle to max
        for every GPU (an estimate outside A100 / H100). Idle time draws `power_w(0)`."""
        f = 0.0 if prefill_frac < 0.0 else 1.0 if prefill_frac > 1.0 else prefill_frac
        return self.power_w(f + (1.0 - f) * DECODE_POWER_FRAC)

    def summary(self) -> dict:
        """The resolved profile as a flat dict, for writing next to results."""
        return {
            "model": self.model.name,
            "model_source": self.model.source,
            "gpu": self.gpu.name,
            "tp": self.tp,
            "precision": self.precision.name,
            "mem_util": self.mem_util,
            "sparsity": self.sparsity,
            "sparse_2_4": self.sparse_2_4,
            "weights_gb_per_gpu": self.weights_bytes_per_gpu / 1e9,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "fits": self.fits,
            "min_gpus": self.min_gpus,
            "engine_profile": self.engine,
        }

    def max_decode_batch(self, ctx_tokens: int) -> int:
        """Most sequences of ctx_tokens that fit in the KV cache at once."""
        return self.kv_capacity_tokens // max(1, ctx_tokens)


def _sparse_factor(model, gpu, precision, sparsity) -> tuple[float, bool]:
    if not 0.0 <= sparsity < 1.0:
        raise InputError("sparsity", None, f"must be in [0, 1), got {sparsity}")
    # Only 2:4 on tensor cores that support it gains anything; unstructured zeros in dense
    # kernels are still stored and multiplied. INT4 kernels have no 2:4 path.
    if abs(sparsity - 0.5) < 1e-9 and gpu.sparsity_2_4 and precision.bytes_per_weight >= 1.0:
        return 0.5 + SPARSE_2_4_INDEX_BYTES_PER_WEIGHT / precision.bytes_per_weight, True
    return 1.0, False


def _tp_ok(model: ModelSpec, tp: int) -> bool:
    return tp in TP_CHOICES and model.heads % tp == 0


def build_profile(
    model: str | ModelSpec,
    gpu: str | GpuSpec,
    *,
    tp: int = 1,
    precision: str | Precision = "bf16",
    mem_util: float = 0.9,
    sparsity: float = 0.0,
    kv_dtype: str | None = None,
    fit_context_tokens: int | None = None,
    calibration: Calibration | None = None,
    engine_profile: str | None = None,
) -> ServingProfile:
    """Resolve names, check the TP degree, and precompute everything step_time_s needs.

    sparsity: fraction of pruned weights. 0.5 on a GPU with 2:4 support is taken as 2:4
    structured (half the GEMM FLOPs, compressed weights); other values change nothing.
    fit_context_tokens: context one sequence must fit for `fits` (default min(max_context, 8192)).
    engine_profile: a shipped engine profile's name ("vllm-v1", "sglang", ...) or the path of a
    profile TOML (`sim calibrate --fit` writes one); default "vllm-v1". `calibration` (a
    Calibration) takes precedence over it.
    kv_dtype: KV-cache dtype when it differs from the weights' (FP8 checkpoints in vLLM keep a
    16-bit KV cache unless --kv-cache-dtype fp8 is given).
    """
    if calibration is None:
        from sim.perf.engines import load_engine_profile

        calibration = load_engine_profile(engine_profile or DEFAULT_ENGINE_PROFILE)
    cal = calibration
    model = model if isinstance(model, ModelSpec) else load_model(model)
    gpu = gpu if isinstance(gpu, GpuSpec) else load_gpu(gpu)
    prec = precision if isinstance(precision, Precision) else get_precision(precision, kv_dtype)
    if not isinstance(tp, int) or not _tp_ok(model, tp):
        raise InputError(
            "tp",
            str(tp),
            f"must be a power of two up to 64 dividing {model.name}'s {model.heads} heads",
        )
    if not 0.0 < mem_util <= 1.0:
        raise InputError("mem_util", None, f"must be in (0, 1], got {mem_util}")
    sparse_factor, sparse_2_4 = _sparse_factor(model, gpu, prec, sparsity)
    fit_ctx = fit_context_tokens or min(model.max_context, DEFAULT_FIT_CONTEXT)

    weights_total = _weight_bytes(model, prec, sparse_factor)
    kv_per_token = kv_bytes_per_token(model, prec)
    block = max(1, int(cal.kv_block_tokens))
    capacity = _kv_capacity(model, gpu, tp, prec, mem_util, weights_total) // block * block
    min_gpus = next(
        (
            t
            for t in TP_CHOICES
            if _tp_ok(model, t)
            and _kv_capacity(model, gpu, t, prec, mem_util, weights_total) >= fit_ctx
        ),
        0,
    )

    bpw = prec.bytes_per_weight * sparse_factor
    routed = model.routed_expert_params
    dense_read = (model.total_params - model.embedding_params - routed) * bpw
    dense_read += model.lm_head_params * 2.0  # the LM head is read every step; the embedding is not
    linear_active = model.active_params - model.embedding_params
    flop_factor = 0.5 if sparse_2_4 else 1.0
    peak = _compute_tflops(gpu, prec) * 1e12
    # Attention runs in 16 bits (FP8 KV is dequantised in the kernel) except on FP8 engines'
    # FP8 attention paths, which the model does not distinguish.
    attn_peak = gpu.bf16_tflops * 1e12 * cal.attn_compute_eff
    nvlink = gpu.interconnect_gbps >= NVLINK_MIN_GBPS
    ring = 2.0 * (tp - 1) / tp
    link_bps = gpu.interconnect_gbps * 1e9 * cal.allreduce_link_eff
    if nvlink and cal.custom_allreduce:
        small_s = cal.custom_ar_latency_s + cal.custom_ar_latency_per_peer_s * (tp - 1)
        small_max = cal.custom_ar_max_bytes
    else:
        small_s, small_max = 0.0, -1.0
    large_s = cal.nccl_latency_s if nvlink else cal.pcie_latency_s
    block = max(1, int(cal.kv_block_tokens))
    return ServingProfile(
        model=model,
        gpu=gpu,
        tp=tp,
        precision=prec,
        mem_util=mem_util,
        weights_bytes_total=weights_total,
        weights_bytes_per_gpu=weights_total / tp,
        kv_bytes_per_token=kv_per_token,
        kv_capacity_tokens=capacity,
        fits=capacity >= fit_ctx,
        min_gpus=min_gpus,
        sparsity=sparsity,
        sparse_2_4=sparse_2_4,
        fit_context_tokens=fit_ctx,
        engine=cal.name,
        kv_block_tokens=block,
        kv_admission=cal.kv_admission,
        frontend_s_per_request=cal.frontend_s_per_request,
        sched_wait_steps=cal.sched_wait_steps,
        _dense_read_bytes=dense_read / tp,
        _routed_read_bytes=routed * bpw / tp,
        _moe_miss=(1.0 - model.experts_per_token / model.experts) if model.is_moe else 1.0,
        _inv_gemm_bw=1.0 / (gpu.bandwidth_gbps * 1e9 * cal.gemm_bw_eff),
        _linear_flops_per_token=2.0 * linear_active * flop_factor / tp,
        _lm_head_flops=2.0 * model.lm_head_params / tp,
        _inv_gemm_flops=1.0 / (peak * cal.gemm_compute_eff),
        _kv_read_per_token=kv_per_token / _kv_shards(model, tp),
        # A sequence of L tokens reads ceil(L / block) whole blocks: (block - 1) / 2 extra
        # tokens on average.
        _kv_pad_tokens=(block - 1) / 2.0,
        _inv_attn_bw=1.0 / (gpu.bandwidth_gbps * 1e9 * cal.attn_bw_eff),
        _attn_s_per_pair=4.0 * model.layers * model.heads * model.head_dim / tp / attn_peak,
        _allreduces=2 * model.layers if tp > 1 else 0,
        _ar_bytes_per_token=model.hidden * 2.0,
        _ar_small_max_bytes=small_max,
        _ar_small_s=small_s,
        _ar_large_s=large_s,
        _ar_s_per_byte=ring / link_bps if tp > 1 else 0.0,
        _graph_max_tokens=int(cal.cuda_graph_max_tokens),
        _graph_decode_only=bool(cal.cuda_graph_decode_only),
        _eager_launch_s=cal.eager_launch_s_per_layer * model.layers,
        _step_overhead_s=cal.step_overhead_s,
        _per_seq_overhead_s=cal.per_seq_overhead_s,
        _cpu_overlap=cal.cpu_overlap,
    )


def requirements(
    model: str | ModelSpec,
    precision: str = "bf16",
    gpu: str | GpuSpec | None = None,
    *,
    context_tokens: int = 4096,
    batch: int = 1,
    mem_util: float = 0.9,
    sparsity: float = 0.0,
) -> dict:
    """What serving `batch` sequences of `context_tokens` needs: GPU memory in total, and on a
    given GPU the number of GPUs (TP degree) and host RAM.

    Host RAM is a rule of thumb, not a measurement: engines stage the checkpoint through the page
    cache (one full copy of the weights), keep ~4 GiB of CPU swap space per GPU, plus ~16 GiB
    for the OS, the Python runtime and tokenisers.
    """
    model = model if isinstance(model, ModelSpec) else load_model(model)
    prec = get_precision(precision) if isinstance(precision, str) else precision
    if context_tokens < 1 or batch < 1:
        raise InputError("requirements", None, "context_tokens and batch must be >= 1")
    gpu = gpu if gpu is None or isinstance(gpu, GpuSpec) else load_gpu(gpu)
    # 2:4 compression needs the GPU to say whether it applies; without one, weights stay dense.
    sparse_factor = _sparse_factor(model, gpu, prec, sparsity)[0] if gpu is not None else 1.0
    weights = _weight_bytes(model, prec, sparse_factor)
    kv_per_token = kv_bytes_per_token(model, prec)
    kv = kv_per_token * context_tokens * batch
    reserve = runtime_reserve_bytes(model, 1)
    out = {
        "model": model.name,
        "precision": prec.name,
        "context_tokens": context_tokens,
        "batch": batch,
        "weights_gb": weights / 1e9,
        "kv_bytes_per_token": kv_per_token,
        "kv_cache_gb": kv / 1e9,
        "runtime_reserve_gb": reserve / 1e9,
        "gpu_memory_gb": (weights + kv + reserve) / mem_util / 1e9,
    }
    if gpu is not None:
        need = context_tokens * batch
        gpus = next(
            (
                t
                for t in TP_CHOICES
                if _tp_ok(model, t) and _kv_capacity(model, gpu, t, prec, mem_util, weights) >= need
            ),
            0,
        )
        out["gpu"] = gpu.name
        out["gpus_needed"] = gpus  # 0: does not fit within a TP group of 64
        out["host_ram_gb"] = (weights + (max(gpus, 1) * 4 + 16) * GIB) / 1e9
    else:
        out["host_ram_gb"] = (weights + 20 * GIB) / 1e9
    return out
