"""Model and GPU catalogs: the TOML files shipped in `sim/perf/data`, extra TOML entries from
$INFERCOST_CATALOG_DIR, and Hugging Face-style `config.json` files given by path."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

from sim.errors import InputError

DATA_DIR = Path(__file__).parent / "data"
CATALOG_DIR_ENV = "INFERCOST_CATALOG_DIR"


@dataclass(frozen=True)
class ModelSpec:
    """One transformer's shape. Parameter counts are whole numbers of parameters (not billions).

    ffn: intermediate size of the dense MLP layers. MoE models add experts (routed experts per
    MoE layer), experts_per_token (routed experts each token uses), expert_ffn, shared_experts
    (always-on experts) and moe_layers (layers whose MLP is MoE; the rest are dense).
    kv_bytes_per_token_override: KV-cache bytes per token at 16-bit precision for attention
    variants the GQA formula does not describe (DeepSeek MLA caches one compressed latent per
    layer); scaled by the KV dtype like the GQA figure.
    """

    name: str
    total_params: float
    active_params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    max_context: int
    experts: int = 0
    experts_per_token: int = 0
    expert_ffn: int = 0
    shared_experts: int = 0
    moe_layers: int = 0
    tied_embeddings: bool = False
    kv_bytes_per_token_override: int | None = None
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def embedding_params(self) -> float:
        """Input embedding table (looked up, not multiplied) plus the LM head when untied."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def lm_head_params(self) -> float:
        return self.vocab * self.hidden

    @property
    def routed_expert_params(self) -> float:
        """Parameters in all routed experts of all MoE layers (0 for dense models)."""
        return float(self.experts * self.moe_layers * 3 * self.hidden * self.expert_ffn)


@dataclass(frozen=True)
class GpuSpec:
    """One GPU's datasheet figures. Throughputs are dense peaks; fp8_tflops None = no FP8 units."""

    name: str
    memory_gb: float
    bandwidth_gbps: float
    bf16_tflops: float
    fp8_tflops: float | None
    int8_tops: float | None
    idle_w: float
    max_w: float
    interconnect_gbps: float
    sparsity_2_4: bool
    source: str = ""


_MODEL_KEYS = {f.name for f in fields(ModelSpec)} | {"kv_lora_rank", "qk_rope_head_dim"}
_MODEL_REQUIRED = ("layers", "hidden", "heads", "vocab", "max_context")
_GPU_KEYS = {f.name for f in fields(GpuSpec)}
_GPU_REQUIRED = ("memory_gb", "bandwidth_gbps", "bf16_tflops", "idle_w", "max_w")


def count_params(
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    ffn: int,
    vocab: int,
    experts: int = 0,
    experts_per_token: int = 0,
    expert_ffn: int = 0,
    shared_experts: int = 0,
    moe_layers: int = 0,
    tied_embeddings: bool = False,
    attn_params_per_layer: float | None = None,
) -> tuple[float, float]:
    """(total, active) parameters of a Llama-style decoder (gated MLP), biases ignored."""
    if attn_params_per_layer is None:
        attn_params_per_layer = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    norms = 2 * hidden
    dense_layers = layers - moe_layers
    expert = 3 * hidden * expert_ffn
    dense = dense_layers * (attn_params_per_layer + 3 * hidden * ffn + norms)
    moe_fixed = moe_layers * (
        attn_params_per_layer + shared_experts * expert + hidden * experts + norms
    )
    embed = vocab * hidden * (1 if tied_embeddings else 2) + hidden
    routed_total = moe_layers * experts * expert
    routed_active = moe_layers * experts_per_token * expert
    fixed = dense + moe_fixed + embed
    return float(fixed + routed_total), float(fixed + routed_active)


def _model_from_mapping(name: str, raw: dict, origin: str) -> ModelSpec:
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise InputError(origin, f"{name}.{sorted(unknown)[0]}", "unknown model field")
    for key in _MODEL_REQUIRED:
        if key not in raw:
            raise InputError(origin, f"{name}.{key}", "missing")
    vals = dict(raw)
    vals.setdefault("kv_heads", vals["heads"])
    vals.setdefault("head_dim", vals["hidden"] // vals["heads"])
    vals.setdefault("ffn", 4 * vals["hidden"])
    if vals.get("experts", 0) > 0:
        vals.setdefault("moe_layers", vals["layers"])
        vals.setdefault("expert_ffn", vals["ffn"])
        if vals.get("experts_per_token", 0) <= 0:
            raise InputError(origin, f"{name}.experts_per_token", "an MoE model needs >= 1")
    kv_lora = vals.pop("kv_lora_rank", None)
    rope = vals.pop("qk_rope_head_dim", 0)
    if kv_lora is not None:
        vals["kv_bytes_per_token_override"] = int((kv_lora + rope) * vals["layers"] * 2)
    for key in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "max_context"):
        if not isinstance(vals[key], int) or vals[key] <= 0:
            raise InputError(
                origin, f"{name}.{key}", f"must be a positive integer, got {vals[key]!r}"
            )
    if vals["heads"] % vals["kv_heads"]:
        raise InputError(origin, f"{name}.kv_heads", "must divide heads")
    if "total_params" not in vals or ("active_params" not in vals and vals.get("experts", 0)):
        total, active = count_params(
            **{
                k: vals[k]
                for k in (
                    "layers hidden heads kv_heads head_dim ffn vocab experts experts_per_token "
                    "expert_ffn shared_experts moe_layers tied_embeddings"
                ).split()
                if k in vals
            }
        )
        vals.setdefault("total_params", total)
        vals.setdefault("active_params", active)
    vals.setdefault("active_params", vals["total_params"])
    vals["total_params"] = float(vals["total_params"])
    vals["active_params"] = float(vals["active_params"])
    vals.setdefault("source", origin)
    return ModelSpec(name=name, **vals)


def _gpu_from_mapping(name: str, raw: dict, origin: str) -> GpuSpec:
    unknown = set(raw) - _GPU_KEYS
    if unknown:
        raise InputError(origin, f"{name}.{sorted(unknown)[0]}", "unknown GPU field")
    for key in _GPU_REQUIRED:
        if key not in raw:
            raise InputError(origin, f"{name}.{key}", "missing")
    vals = {"fp8_tflops": None, "int8_tops": None, "interconnect_gbps": 32.0, "sparsity_2_4": False}
    vals.update(raw)
    optional = ("fp8_tflops", "int8_tops")
    for key in (
        "memory_gb",
        "bandwidth_gbps",
        "bf16_tflops",
        "idle_w",
        "max_w",
        "interconnect_gbps",
        *optional,
    ):
        value = vals[key]
        if value is None and key in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InputError(
                origin, f"{name}.{key}", f"must be a non-negative number, got {value!r}"
            )
        vals[key] = float(value)
    if (
        vals["max_w"] < vals["idle_w"]
        or min(vals["memory_gb"], vals["bandwidth_gbps"], vals["bf16_tflops"]) <= 0
    ):
        raise InputError(
            origin, name, "needs memory, bandwidth, BF16 TFLOPS > 0 and max_w >= idle_w"
        )
    vals.setdefault("source", origin)
    return GpuSpec(name=name, **vals)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(str(path), None, f"cannot read: {exc.strerror}") from None


def _catalog_files(stem: str) -> list[Path]:
    files = [DATA_DIR / f"{stem}.toml"]
    extra = os.environ.get(CATALOG_DIR_ENV)
    if extra:
        files += sorted(Path(extra).glob(f"{stem}*.toml"))
    return files


@cache
def _models(extra_dir: str | None) -> dict[str, ModelSpec]:
    out: dict[str, ModelSpec] = {}
    for path in _catalog_files("models"):
        for name, raw in _read_toml(path).items():
            out[name.lower()] = _model_from_mapping(name.lower(), raw, str(path))
    return out


@cache
def _gpus(extra_dir: str | None) -> dict[str, GpuSpec]:
    out: dict[str, GpuSpec] = {}
    for path in _catalog_files("gpus"):
        for name, raw in _read_toml(path).items():
            out[name.lower()] = _gpu_from_mapping(name.lower(), raw, str(path))
    return out


def list_models() -> list[str]:
    """Catalog model names, shipped and from $INFERCOST_CATALOG_DIR/models*.toml."""
    return sorted(_models(os.environ.get(CATALOG_DIR_ENV)))


def list_gpus() -> list[str]:
    """Catalog GPU names, shipped and from $INFERCOST_CATALOG_DIR/gpus*.toml."""
    return sorted(_gpus(os.environ.get(CATALOG_DIR_ENV)))


def model_from_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """A ModelSpec from a local Hugging Face `config.json` (Llama, Mistral, Mixtral, Qwen2,
    DeepSeek-V2/V3 field names). Parameter counts are computed from the shapes."""
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(str(path), None, f"cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), None, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(cfg, dict):
        raise InputError(str(path), None, "expected a JSON object")
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size"):
        if key not in cfg:
            raise InputError(str(path), key, "missing (not a Hugging Face decoder config?)")
    layers = cfg["num_hidden_layers"]
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or cfg.get("v_head_dim") or hidden // heads
    ffn = cfg.get("intermediate_size") or 4 * hidden
    experts = (
        cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts") or 0
    )
    raw: dict = {
        "layers": layers,
        "hidden": hidden,
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "ffn": ffn,
        "vocab": cfg["vocab_size"],
        "max_context": cfg.get("max_position_embeddings") or 4096,
        "tied_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "source": str(path),
    }
    attn_params = None
    if cfg.get("kv_lora_rank"):
        # MLA (DeepSeek-V2/V3): low-rank query and key/value projections.
        q_lora = cfg.get("q_lora_rank") or 0
        nope, rope = cfg.get("qk_nope_head_dim", 128), cfg.get("qk_rope_head_dim", 64)
        v_dim, kv_lora = cfg.get("v_head_dim", 128), cfg["kv_lora_rank"]
        q = (
            hidden * q_lora + q_lora * heads * (nope + rope)
            if q_lora
            else hidden * heads * (nope + rope)
        )
        kv = hidden * (kv_lora + rope) + kv_lora * heads * (nope + v_dim)
        attn_params = q + kv + heads * v_dim * hidden
        raw["kv_lora_rank"], raw["qk_rope_head_dim"] = kv_lora, rope
    if experts:
        raw["experts"] = experts
        raw["experts_per_token"] = cfg.get("num_experts_per_tok") or 2
        raw["expert_ffn"] = cfg.get("moe_intermediate_size") or ffn
        raw["shared_experts"] = cfg.get("n_shared_experts") or 0
        first_dense = cfg.get("first_k_dense_replace") or 0
        raw["moe_layers"] = layers - first_dense
    total, active = count_params(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        ffn=ffn,
        vocab=raw["vocab"],
        experts=experts,
        experts_per_token=raw.get("experts_per_token", 0),
        expert_ffn=raw.get("expert_ffn", 0),
        shared_experts=raw.get("shared_experts", 0),
        moe_layers=raw.get("moe_layers", 0),
        tied_embeddings=raw["tied_embeddings"],
        attn_params_per_layer=attn_params,
    )
    raw["total_params"], raw["active_params"] = total, active
    model_name = name or cfg.get("_name_or_path") or path.parent.name or path.stem
    return _model_from_mapping(str(model_name).lower(), raw, str(path))


def load_model(name_or_path: str) -> ModelSpec:
    """A catalog model by name (case-insensitive), or a path to a `config.json` or a `.toml` file
    holding one model table. Unknown names raise InputError listing the known ones."""
    key = str(name_or_path).strip()
    models = _models(os.environ.get(CATALOG_DIR_ENV))
    if key.lower() in models:
        return models[key.lower()]
    path = Path(key)
    if key.endswith(".json"):
        if not path.exists():
            raise InputError(key, None, "config file not found")
        return model_from_hf_config(path)
    if key.endswith(".toml"):
        if not path.exists():
            raise InputError(key, None, "model file not found")
        tables = _read_toml(path)
        if len(tables) != 1 or not isinstance(next(iter(tables.values())), dict):
            raise InputError(key, None, "expected exactly one [model-name] table")
        ((name, raw),) = tables.items()
        return _model_from_mapping(name.lower(), raw, key)
    raise InputError("model", key, f"unknown model; known: {', '.join(sorted(models))}")


def load_gpu(name: str) -> GpuSpec:
    """A catalog GPU by name (case-insensitive); unknown names raise InputError naming the known."""
    gpus = _gpus(os.environ.get(CATALOG_DIR_ENV))
    key = str(name).strip().lower()
    if key not in gpus:
        raise InputError("gpu", str(name), f"unknown GPU; known: {', '.join(sorted(gpus))}")
    return gpus[key]
