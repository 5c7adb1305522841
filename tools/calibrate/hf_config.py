"""Reads a Hugging Face config.json into the ModelConfig the calibration models are built from.

Only the architectures the harness implements are accepted (LlamaForCausalLM,
Qwen3ForCausalLM, Qwen3MoeForCausalLM, DeepseekV3ForCausalLM). Every key of the file
must be known: a key is either used (it shapes the model), or listed as not changing the
memory of a training step (token ids, initialisation, RoPE base, ...), or it is refused.
A key whose value the harness does not implement (a RoPE scaling, sliding windows,
dropout, an auxiliary loss, quantised weights) is refused with the key named, so no run
silently measures a different model than the file describes.

Errors are ConfigError values raised to the caller, with "file:line:col: message" for
JSON syntax and "file: key: message" for a bad key; nothing here prints or exits.
"""

import dataclasses
import json
from typing import Optional

MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few kB; refuse anything absurd

ARCHITECTURES = (
    "LlamaForCausalLM",
    "Qwen3ForCausalLM",
    "Qwen3MoeForCausalLM",
    "DeepseekV3ForCausalLM",
)


class ConfigError(ValueError):
    """A config.json the harness cannot build faithfully; the message names the key."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The resolved model: every dimension the harness builds from, HF defaults applied."""

    architecture: str
    dtype: str  # "bfloat16" or "float32": parameters, grads and AdamW state
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int  # GQA families: per-head q/k/v width
    intermediate_size: int  # dense MLP width
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool
    mlp_bias: bool
    qk_norm: bool  # Qwen3 / Qwen3-MoE: RMSNorm over head_dim on q and k
    pad_token_id: Optional[int]
    initializer_range: float
    # MLA (DeepseekV3ForCausalLM)
    q_lora_rank: Optional[int] = None  # None: a plain q_proj
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    rope_interleave: bool = False
    # MoE: "deepseek_v3" (sigmoid router, groups, shared experts) or "qwen3_moe" (softmax)
    moe: Optional[str] = None
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    n_shared_experts: int = 0
    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = False
    first_k_dense_replace: int = 0
    moe_layer_freq: int = 1
    decoder_sparse_step: int = 1
    mlp_only_layers: tuple = ()

    def is_moe_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` has a MoE block (else the dense MLP)."""
        if self.moe == "deepseek_v3":
            # DeepSeek's own modeling code; HF's port tests only first_k_dense_replace,
            # which is the same rule when moe_layer_freq is 1 (every published config).
            return layer >= self.first_k_dense_replace and layer % self.moe_layer_freq == 0
        if self.moe == "qwen3_moe":
            return (layer not in self.mlp_only_layers and self.num_experts > 0
                    and (layer + 1) % self.decoder_sparse_step == 0)
        return False

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out["mlp_only_layers"] = list(self.mlp_only_layers)
        # floats would make the output depend on float printing; keep them as text
        for key in ("rms_norm_eps", "rope_theta", "initializer_range", "routed_scaling_factor"):
            out[key] = repr(out[key])
        return out


# Keys present in published config.json files that do not change what a training step
# holds in memory in this harness (token ids, init, bookkeeping, inference caches).
_IGNORED = {
    "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
    "bos_token_id", "eos_token_id", "use_cache", "initializer_range",
    "rms_norm_eps", "rope_theta", "max_position_embeddings", "pad_token_id",
    "auto_map", "_name_or_path",
}

# key -> (type, default or _REQUIRED); the default is the HF config class's default.
_REQUIRED = object()
_COMMON = {
    "vocab_size": (int, _REQUIRED),
    "hidden_size": (int, _REQUIRED),
    "num_hidden_layers": (int, _REQUIRED),
    "num_attention_heads": (int, _REQUIRED),
    "num_key_value_heads": (int, None),  # None: MHA
    "intermediate_size": (int, _REQUIRED),
    "tie_word_embeddings": (bool, False),
    "attention_bias": (bool, False),
}
_FAMILY = {
    "LlamaForCausalLM": {"head_dim": (int, None), "mlp_bias": (bool, False)},
    "Qwen3ForCausalLM": {"head_dim": (int, None)},
    "Qwen3MoeForCausalLM": {
        "head_dim": (int, None),
        "num_experts": (int, _REQUIRED),
        "num_experts_per_tok": (int, _REQUIRED),
        "moe_intermediate_size": (int, _REQUIRED),
        "norm_topk_prob": (bool, False),
        "decoder_sparse_step": (int, 1),
        "mlp_only_layers": (list, []),
    },
    "DeepseekV3ForCausalLM": {
        "q_lora_rank": (int, _REQUIRED),  # null allowed: a plain q_proj
        "kv_lora_rank": (int, _REQUIRED),
        "qk_nope_head_dim": (int, _REQUIRED),
        "qk_rope_head_dim": (int, _REQUIRED),
        "v_head_dim": (int, _REQUIRED),
        "rope_interleave": (bool, True),
        "head_dim": (int, None),  # HF writes qk_rope_head_dim here
        "n_routed_experts": (int, _REQUIRED),
        "num_experts_per_tok": (int, _REQUIRED),
        "moe_intermediate_size": (int, _REQUIRED),
        "n_shared_experts": (int, 1),
        "n_group": (int, 1),
        "topk_group": (int, 1),
        "routed_scaling_factor": (float, 1.0),
        "norm_topk_prob": (bool, True),
        "first_k_dense_replace": (int, 0),
        "moe_layer_freq": (int, 1),
    },
}
_NULLABLE = {"num_key_value_heads", "head_dim", "q_lora_rank"}

# Keys accepted only with the value that the harness implements (value, why).
_FIXED = {
    "hidden_act": ("silu", "only SwiGLU with SiLU is implemented"),
    "attention_dropout": (0.0, "the harness measures with dropout off"),
    "pretraining_tp": (1, "HF's pretraining_tp slicing is not implemented"),
    "rope_scaling": (None, "only plain RoPE is implemented"),
    "use_sliding_window": (False, "sliding-window attention is not implemented"),
    "output_router_logits": (False, "the router auxiliary loss is not implemented"),
    "topk_method": ("noaux_tc", "DeepseekV3's router is group-limited top-k (noaux_tc)"),
    "scoring_func": ("sigmoid", "DeepseekV3's router scores with a sigmoid"),
    "ep_size": (1, "the harness runs one process"),
    "quantization_config": (None, "quantised weights are not implemented"),
}
# Keys that matter only with a value refused above (sliding windows, the auxiliary loss),
# and DeepSeek's multi-token-prediction layers, which HF's DeepseekV3 port does not build.
_INERT = {
    "sliding_window", "max_window_layers",
    "router_aux_loss_coef", "aux_loss_alpha", "seq_aux",
    "num_nextn_predict_layers",
}


def load(path: str) -> ModelConfig:
    """Reads and validates the config.json at `path`; raises ConfigError."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a config.json")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse(text, path)


def parse(text: str, name: str) -> ModelConfig:
    """Parses config.json text; `name` prefixes every error message."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{name}:{e.lineno}:{e.colno}: {e.msg}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{name}:1:1: expected a JSON object")
    return _resolve(obj, name)


def _err(name, key, msg):
    return ConfigError(f"{name}: {key}: {msg}")


def _typed(name, key, value, typ, nullable):
    if value is None:
        if nullable:
            return None
        raise _err(name, key, "must not be null")
    if typ is bool:
        if not isinstance(value, bool):
            raise _err(name, key, f"expected true or false, got {json.dumps(value)}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(name, key, f"expected an integer, got {json.dumps(value)}")
        if value < 0:
            raise _err(name, key, f"must not be negative, got {value}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _err(name, key, f"expected a number, got {json.dumps(value)}")
        return float(value)
    if typ is list:
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise _err(name, key, f"expected a list of integers, got {json.dumps(value)}")
        return value
    raise AssertionError(typ)


def _resolve(obj: dict, name: str) -> ModelConfig:
    archs = obj.get("architectures")
    if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in ARCHITECTURES:
        raise _err(name, "architectures",
                   f"expected one of {', '.join(ARCHITECTURES)}, got {json.dumps(archs)}")
    arch = archs[0]
    dtype = obj.get("torch_dtype", obj.get("dtype"))
    if dtype not in ("bfloat16", "float32"):
        raise _err(name, "torch_dtype", f"expected \"bfloat16\" or \"float32\", got "
                   f"{json.dumps(dtype)}")

    table = dict(_COMMON)
    table.update(_FAMILY[arch])
    for key in obj:
        if key in table or key in _IGNORED or key in _INERT:
            continue
        if key in _FIXED:
            want, why = _FIXED[key]
            if obj[key] != want:
                raise _err(name, key, f"{json.dumps(obj[key])} is not supported ({why})")
            continue
        raise _err(name, key, "unknown key (it may change memory; the harness refuses it)")

    v = {}
    for key, (typ, default) in table.items():
        if key in obj:
            v[key] = _typed(name, key, obj[key], typ, key in _NULLABLE)
        elif default is _REQUIRED:
            raise _err(name, key, "missing")
        else:
            v[key] = default

    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size"):
        if v[key] == 0:
            raise _err(name, key, "must be positive")
    heads = v["num_attention_heads"]
    kv_heads = v["num_key_value_heads"] if v["num_key_value_heads"] is not None else heads
    if kv_heads == 0 or heads % kv_heads:
        raise _err(name, "num_key_value_heads",
                   f"{kv_heads} does not divide num_attention_heads {heads}")
    if arch == "DeepseekV3ForCausalLM":
        # MLA expands k/v to every head itself; HF's repeat_kv would break on fewer.
        if kv_heads != heads:
            raise _err(name, "num_key_value_heads",
                       f"MLA needs num_attention_heads ({heads}), got {kv_heads}")
        head_dim = v["qk_rope_head_dim"]  # what HF's DeepseekV3Config sets as head_dim
        if v["head_dim"] is not None and v["head_dim"] != head_dim:
            raise _err(name, "head_dim", f"must equal qk_rope_head_dim ({head_dim}) in MLA")
    else:
        head_dim = v["head_dim"]
        if head_dim is None:
            if v["hidden_size"] % heads:
                raise _err(name, "head_dim", "absent, and hidden_size is not a multiple of "
                           "num_attention_heads")
            head_dim = v["hidden_size"] // heads
        if head_dim == 0 or head_dim % 2:
            raise _err(name, "head_dim", f"must be even and positive for RoPE, got {head_dim}")

    def number(key, default, typ=float):
        return _typed(name, key, obj[key], typ, False) if key in obj else default

    pad = obj.get("pad_token_id")
    if pad is not None:
        pad = _typed(name, "pad_token_id", pad, int, False)
        if pad >= v["vocab_size"]:
            raise _err(name, "pad_token_id", f"{pad} is not below vocab_size")
    common = dict(
        architecture=arch, dtype=dtype, vocab_size=v["vocab_size"],
        hidden_size=v["hidden_size"], num_hidden_layers=v["num_hidden_layers"],
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        intermediate_size=v["intermediate_size"],
        rms_norm_eps=number("rms_norm_eps", 1e-6), rope_theta=number("rope_theta", 10000.0),
        max_position_embeddings=number("max_position_embeddings", 2048, int),
        tie_word_embeddings=v["tie_word_embeddings"], attention_bias=v["attention_bias"],
        mlp_bias=v.get("mlp_bias", False),
        qk_norm=arch in ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM"),
        pad_token_id=pad, initializer_range=number("initializer_range", 0.02),
    )
    if arch == "Qwen3MoeForCausalLM":
        return ModelConfig(**common, **_qwen3_moe(v, name))
    if arch == "DeepseekV3ForCausalLM":
        return ModelConfig(**common, **_deepseek_v3(v, name))
    return ModelConfig(**common)


def _experts(v, name, n_key):
    n, k = v[n_key], v["num_experts_per_tok"]
    if n == 0 or v["moe_intermediate_size"] == 0:
        raise _err(name, n_key, "a MoE model needs experts of a positive width")
    if not 0 < k <= n:
        raise _err(name, "num_experts_per_tok", f"{k} is not in 1..{n}")
    return n, k


def _qwen3_moe(v, name):
    n, k = _experts(v, name, "num_experts")
    if v["decoder_sparse_step"] == 0:
        raise _err(name, "decoder_sparse_step", "must be positive")
    layers = v["num_hidden_layers"]
    for layer in v["mlp_only_layers"]:
        if not 0 <= layer < layers:
            raise _err(name, "mlp_only_layers", f"layer {layer} is not in 0..{layers - 1}")
    return dict(moe="qwen3_moe", num_experts=n, num_experts_per_tok=k,
                moe_intermediate_size=v["moe_intermediate_size"],
                norm_topk_prob=v["norm_topk_prob"],
                decoder_sparse_step=v["decoder_sparse_step"],
                mlp_only_layers=tuple(sorted(set(v["mlp_only_layers"]))))


def _deepseek_v3(v, name):
    n, k = _experts(v, name, "n_routed_experts")
    for key in ("kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "qk_rope_head_dim"):
        if v[key] == 0:
            raise _err(name, key, "must be positive")
    if v["q_lora_rank"] == 0:
        raise _err(name, "q_lora_rank", "must be positive, or null for a plain q_proj")
    if v["qk_rope_head_dim"] % 2:
        raise _err(name, "qk_rope_head_dim", "must be even for RoPE")
    groups, topk_groups = v["n_group"], v["topk_group"]
    if groups == 0 or n % groups:
        raise _err(name, "n_group", f"{groups} does not divide n_routed_experts {n}")
    if not 0 < topk_groups <= groups:
        raise _err(name, "topk_group", f"{topk_groups} is not in 1..{groups}")
    if n // groups < 2:
        raise _err(name, "n_group", "each group needs two experts (its score is the top-2 sum)")
    if k > topk_groups * (n // groups):
        raise _err(name, "num_experts_per_tok",
                   f"{k} exceeds the {topk_groups * (n // groups)} experts of the chosen groups")
    if v["moe_layer_freq"] == 0:
        raise _err(name, "moe_layer_freq", "must be positive")
    return dict(q_lora_rank=v["q_lora_rank"], kv_lora_rank=v["kv_lora_rank"],
                qk_nope_head_dim=v["qk_nope_head_dim"], qk_rope_head_dim=v["qk_rope_head_dim"],
                v_head_dim=v["v_head_dim"], rope_interleave=v["rope_interleave"],
                moe="deepseek_v3", num_experts=n, num_experts_per_tok=k,
                moe_intermediate_size=v["moe_intermediate_size"],
                n_shared_experts=v["n_shared_experts"], n_group=groups, topk_group=topk_groups,
                routed_scaling_factor=v["routed_scaling_factor"],
                norm_topk_prob=v["norm_topk_prob"],
                first_k_dense_replace=v["first_k_dense_replace"],
                moe_layer_freq=v["moe_layer_freq"])
