"""Synthetic GGUF weights: a checkpoint's exact llama.cpp architecture and shapes, quantized by llama.cpp itself.

Without real GGUF weights on disk the llama.cpp engine measures a file built here: every tensor llama.cpp's
``qwen2`` / ``llama`` / ``deepseek2`` graph reads, with the catalogue entry's exact shapes and types, quantized by
``llama_model_quantize`` — llama.cpp's own quantizer, so a synthetic ``Q4_K_M`` has the same per-tensor type mix
(Q4_K, Q6_K for some) as a real one. Values follow the torch synthetic weights (``checkpoints.synthetic``): variance
1/fan_in from a seeded block, norms 1, small biases. A minimal valid tokenizer goes in the metadata (a
SentencePiece-style vocabulary of the checkpoint's size with byte tokens and its BOS/EOS ids); prompts are token
ids, never text.

Building it in three steps keeps the 1.5B Q4_K_M to seconds instead of minutes: (1) a *sample* GGUF with the full
metadata and every tensor's name and row length but only the first few rows of each matrix (about 2^18 values) is
written as F16 with the ``gguf`` package; (2) llama.cpp quantizes the sample — its rules pick each tensor's type
from the name, layer, row length and the model's hyperparameters, never from the row count, so the sample gets the
types the full model would; (3) each quantized sample tensor is repeated row by row to its full row count in the
final file. Quantizing every value of a random 1.5B model took 66–96 s of the two cores here, and its values are as
synthetic as the repeated ones: what a decode step reads — bytes, types, shapes — is the same.

``deepseek2`` (DeepSeek-V2/V3: MLA attention, MoE) is written as convert_hf_to_gguf.py writes it: ``kv_b_proj``
split into the per-head ``attn_k_b`` / ``attn_v_b`` that llama.cpp's absorbed MLA reads, routed experts stacked
into 3-D ``*_exps`` tensors (n_expert, rows, row length), routers F32, V3's MTP layer left out. An expert stack is
sampled as the first rows of its first two experts (still 3-D) and repeated row by row across all experts.

Files are cached under the user cache directory (``$PYTEST_TEE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pytest-tee``,
else ``~/.cache/pytest-tee``) in ``gguf/``, named by checkpoint, quantization, seed and writer version. They are
built under a ``.partial`` name and renamed when complete, with a lock so that two sessions never build the same
file at once: a half-written file is never picked up, and an interrupted build leaves only a ``.partial`` that the
next build or ``pytest-tee cache clear`` removes.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tee.checkpoints.gguf_quant import QUANTS

if TYPE_CHECKING:
    import numpy as np

    from pytest_tee.checkpoints.catalogue import Checkpoint

# Bump when the written content changes: cached files of another version are not used.
WRITER_VERSION = 2
SAMPLE_ELEMENTS = 1 << 18  # values per matrix that llama.cpp's quantizer sees; the rest repeats them
_BLOCK_ELEMENTS = 1_048_573  # prime, as in checkpoints.synthetic: periodic fills never align with a row
_BIAS_SCALE = 0.02
SUPPORTED_FAMILIES = ("qwen2", "llama", "deepseek_v2", "deepseek_v3")
_DEEPSEEK = ("deepseek_v2", "deepseek_v3")


class SyntheticGGUFError(RuntimeError):
    """A synthetic GGUF that cannot be built here (unsupported architecture, no disk space, quantizer failure)."""


def cache_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """Where pytest-tee caches what it builds (``gguf/`` below it)."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("PYTEST_TEE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pytest-tee"


def cache_name(checkpoint_id: str, quant: str, seed: int) -> str:
    return f"{checkpoint_id}.{quant}.seed{seed}.w{WRITER_VERSION}.gguf"


@dataclass(frozen=True)
class Built:
    path: Path
    cached: bool  # True: found ready in the cache
    seconds: float  # to find or build it
    write_seconds: float = 0.0  # the sample, and the full file from it
    quantize_seconds: float = 0.0  # llama.cpp quantizing the sample


def synthetic_gguf(
    checkpoint: Checkpoint, quant: str, *, seed: int = 0, threads: int | None = None, root: Path | None = None
) -> Built:
    """The cached synthetic GGUF of ``checkpoint`` in ``quant``, built first when missing."""
    started = time.perf_counter()
    if checkpoint.family not in SUPPORTED_FAMILIES:
        raise SyntheticGGUFError(
            f"synthetic GGUF weights are built for the {', '.join(SUPPORTED_FAMILIES)} architectures; "
            f"{checkpoint.id} is {checkpoint.family} (give real GGUF weights with --tee-model-path)"
        )
    if quant not in QUANTS:
        raise SyntheticGGUFError(f"unknown quantization {quant!r}; valid: {', '.join(QUANTS)}")
    folder = (root or cache_dir()) / "gguf"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / cache_name(checkpoint.id, quant, seed)
    if target.is_file():
        return Built(target, True, time.perf_counter() - started)
    with _locked(folder / (target.name + ".lock")):
        if target.is_file():  # another session built it while we waited
            return Built(target, True, time.perf_counter() - started)
        _check_disk_space(checkpoint, quant, folder)
        partial = folder / f"{target.name}.{os.getpid()}.partial"
        sample = folder / f"{target.name}.{os.getpid()}.sample.partial"
        quantized = folder / f"{target.name}.{os.getpid()}.sample-{quant}.partial"
        try:
            t0 = time.perf_counter()
            write_f16_gguf(checkpoint, sample, seed=seed, sample_elements=SAMPLE_ELEMENTS)
            t1 = time.perf_counter()
            if quant != "F16":
                quantize(sample, quantized, quant, threads=threads)
            t2 = time.perf_counter()
            expand_sample(quantized if quant != "F16" else sample, checkpoint, partial, QUANTS[quant].ftype)
            t3 = time.perf_counter()
            os.replace(partial, target)
        finally:
            for leftover in (sample, quantized, partial):
                leftover.unlink(missing_ok=True)
    return Built(target, False, time.perf_counter() - started, (t1 - t0) + (t3 - t2), t2 - t1)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    import fcntl

    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            # Leftovers of builds that died (their process is gone) are removed before starting again.
            for stale in lock_path.parent.glob(lock_path.name.removesuffix(".lock") + ".*.partial"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_disk_space(checkpoint: Checkpoint, quant: str, folder: Path) -> None:
    need = int(checkpoint.parameters * QUANTS[quant].bits_per_weight / 8) + (256 << 20)  # the file, the samples
    free = shutil.disk_usage(folder).free
    if free < need:
        raise SyntheticGGUFError(
            f"building the synthetic {checkpoint.id} {quant} GGUF needs about {need / 2**30:.1f} GiB free in "
            f"{folder}, but {free / 2**30:.1f} GiB is free (set PYTEST_TEE_CACHE_DIR to a larger disk)"
        )


# --------------------------------------------------------------------------------------------------- writing


def tensor_layout(checkpoint: Checkpoint) -> list[tuple[str, tuple[int, ...], str]]:
    """(GGUF name, numpy shape, kind) of every tensor llama.cpp's graph for this architecture reads.

    Kinds: ``weight`` (a matrix, F16), ``norm`` (ones, F32), ``bias`` (small, F32), ``rope`` (llama3 rope factors),
    ``router`` (an MoE gate, F32 as convert_hf_to_gguf.py writes it; llama.cpp never quantizes it), ``buffer``
    (DeepSeek-V3's ``e_score_correction_bias``, a transformers buffer rather than a parameter: small, F32).
    """
    if checkpoint.family in _DEEPSEEK:
        return _deepseek2_layout(checkpoint)
    cfg = checkpoint.config
    hidden, ffn = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    heads, kv_heads = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"])
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    vocab, layers = int(cfg["vocab_size"]), int(cfg["num_hidden_layers"])
    with_bias = checkpoint.family == "qwen2" or bool(cfg.get("attention_bias"))
    tensors: list[tuple[str, tuple[int, ...], str]] = [("token_embd.weight", (vocab, hidden), "weight")]
    for i in range(layers):
        block = f"blk.{i}"
        tensors += [
            (f"{block}.attn_norm.weight", (hidden,), "norm"),
            (f"{block}.attn_q.weight", (heads * head_dim, hidden), "weight"),
            (f"{block}.attn_k.weight", (kv_heads * head_dim, hidden), "weight"),
            (f"{block}.attn_v.weight", (kv_heads * head_dim, hidden), "weight"),
        ]
        if with_bias:
            tensors += [
                (f"{block}.attn_q.bias", (heads * head_dim,), "bias"),
                (f"{block}.attn_k.bias", (kv_heads * head_dim,), "bias"),
                (f"{block}.attn_v.bias", (kv_heads * head_dim,), "bias"),
            ]
        tensors += [
            (f"{block}.attn_output.weight", (hidden, heads * head_dim), "weight"),
            (f"{block}.ffn_norm.weight", (hidden,), "norm"),
            (f"{block}.ffn_gate.weight", (ffn, hidden), "weight"),
            (f"{block}.ffn_up.weight", (ffn, hidden), "weight"),
            (f"{block}.ffn_down.weight", (hidden, ffn), "weight"),
        ]
    tensors.append(("output_norm.weight", (hidden,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        tensors.append(("output.weight", (vocab, hidden), "weight"))
    if _llama3_rope(cfg) is not None:
        tensors.append(("rope_freqs.weight", (head_dim // 2,), "rope"))
    return tensors


def _deepseek2_layout(checkpoint: Checkpoint) -> list[tuple[str, tuple[int, ...], str]]:
    """llama.cpp's ``deepseek2`` (DeepSeek-V2/V3: MLA attention, leading dense blocks, then MoE with shared experts).

    As convert_hf_to_gguf.py (DeepseekV2Model) writes it: ``kv_b_proj`` split into ``attn_k_b`` (per head, transposed:
    numpy (heads, kv_lora_rank, qk_nope)) and ``attn_v_b`` (heads, v_head_dim, kv_lora_rank) for MLA's absorbed
    attention; experts stacked into 3-D ``*_exps`` (n_expert, rows, row length); the MTP (nextn) layer skipped, as
    the converter and transformers both skip it.
    """
    cfg = checkpoint.config
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    nope, rope, v_dim = int(cfg["qk_nope_head_dim"]), int(cfg["qk_rope_head_dim"]), int(cfg["v_head_dim"])
    kv_rank, q_rank = int(cfg["kv_lora_rank"]), int(cfg.get("q_lora_rank") or 0)
    vocab, layers = int(cfg["vocab_size"]), int(cfg["num_hidden_layers"])
    dense_layers, ffn = int(cfg.get("first_k_dense_replace", 0)), int(cfg["intermediate_size"])
    experts, moe_ffn = int(cfg["n_routed_experts"]), int(cfg["moe_intermediate_size"])
    shared_ffn = moe_ffn * int(cfg.get("n_shared_experts") or 0)
    if cfg.get("attention_bias"):
        raise SyntheticGGUFError(f"{checkpoint.id}: llama.cpp's deepseek2 has no attention biases")
    if not q_rank and layers not in (26, 27):
        # llama.cpp picks deepseek2's "lite" attention (attn_q, no q_lora_rank) by layer count, not by the key:
        # V2-Lite's 27 layers (26: GigaChat3); any other count requires q_lora_rank and attn_q_a/attn_q_b.
        raise SyntheticGGUFError(
            f"{checkpoint.id}: llama.cpp reads deepseek2 without q_lora_rank only with 26 or 27 layers, not {layers}"
        )
    tensors: list[tuple[str, tuple[int, ...], str]] = [("token_embd.weight", (vocab, hidden), "weight")]
    for i in range(layers):
        block = f"blk.{i}"
        tensors.append((f"{block}.attn_norm.weight", (hidden,), "norm"))
        if q_rank:
            tensors += [
                (f"{block}.attn_q_a.weight", (q_rank, hidden), "weight"),
                (f"{block}.attn_q_a_norm.weight", (q_rank,), "norm"),
                (f"{block}.attn_q_b.weight", (heads * (nope + rope), q_rank), "weight"),
            ]
        else:
            tensors.append((f"{block}.attn_q.weight", (heads * (nope + rope), hidden), "weight"))
        tensors += [
            (f"{block}.attn_kv_a_mqa.weight", (kv_rank + rope, hidden), "weight"),
            (f"{block}.attn_kv_a_norm.weight", (kv_rank,), "norm"),
            (f"{block}.attn_k_b.weight", (heads, kv_rank, nope), "weight"),
            (f"{block}.attn_v_b.weight", (heads, v_dim, kv_rank), "weight"),
            (f"{block}.attn_output.weight", (hidden, heads * v_dim), "weight"),
            (f"{block}.ffn_norm.weight", (hidden,), "norm"),
        ]
        if i < dense_layers:
            tensors += [
                (f"{block}.ffn_gate.weight", (ffn, hidden), "weight"),
                (f"{block}.ffn_up.weight", (ffn, hidden), "weight"),
                (f"{block}.ffn_down.weight", (hidden, ffn), "weight"),
            ]
            continue
        tensors.append((f"{block}.ffn_gate_inp.weight", (experts, hidden), "router"))
        if checkpoint.family == "deepseek_v3":
            tensors.append((f"{block}.exp_probs_b.bias", (experts,), "buffer"))
        tensors += [
            (f"{block}.ffn_gate_exps.weight", (experts, moe_ffn, hidden), "weight"),
            (f"{block}.ffn_down_exps.weight", (experts, hidden, moe_ffn), "weight"),
            (f"{block}.ffn_up_exps.weight", (experts, moe_ffn, hidden), "weight"),
        ]
        if shared_ffn:
            tensors += [
                (f"{block}.ffn_gate_shexp.weight", (shared_ffn, hidden), "weight"),
                (f"{block}.ffn_down_shexp.weight", (hidden, shared_ffn), "weight"),
                (f"{block}.ffn_up_shexp.weight", (shared_ffn, hidden), "weight"),
            ]
    tensors.append(("output_norm.weight", (hidden,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        tensors.append(("output.weight", (vocab, hidden), "weight"))
    return tensors


def write_f16_gguf(checkpoint: Checkpoint, path: Path, *, seed: int = 0, sample_elements: int | None = None) -> None:
    """Write the checkpoint as an F16 GGUF (norms, biases and rope factors F32), streaming tensor by tensor.

    With ``sample_elements``, each matrix keeps its row length but only the first rows holding about that many
    values (at least two, so that it stays a matrix): the sample that ``expand_sample`` grows to full size.
    """
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType

    arch = _architecture(checkpoint)
    writer = GGUFWriter(path, arch)
    _add_metadata(writer, checkpoint, arch)
    writer.add_file_type(int(LlamaFileType.MOSTLY_F16))
    layout = [
        (name, _sample_shape(shape, sample_elements) if sample_elements else shape, kind)
        for name, shape, kind in tensor_layout(checkpoint)
    ]
    for name, shape, kind in layout:
        dtype = np.float16 if kind == "weight" else np.float32
        writer.add_tensor_info(name, shape, np.dtype(dtype), math.prod(shape) * np.dtype(dtype).itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    block = _seeded_block(seed)
    for index, (name, shape, kind) in enumerate(layout):
        writer.write_tensor_data(_values(checkpoint, name, shape, kind, block, index))
    writer.close()


def _sample_shape(shape: tuple[int, ...], sample_elements: int) -> tuple[int, ...]:
    """A matrix: its first rows. A stack of experts (n_expert, rows, row length): the first rows of the first two
    experts, so that the sample stays 3-D as llama.cpp's quantizer sees the full tensor (its type rules read the
    name, the row length and the hyperparameters, never the row or expert count)."""
    if len(shape) == 2:
        rows, row_length = shape
        return (min(rows, max(2, -(-sample_elements // row_length))), row_length)
    if len(shape) == 3:
        experts, rows, row_length = shape
        kept = min(experts, 2)
        return (kept, min(rows, max(2, -(-sample_elements // (row_length * kept)))), row_length)
    return shape


def expand_sample(sample: Path, checkpoint: Checkpoint, target: Path, file_type: int) -> None:
    """The full-size GGUF: the sample's metadata and tensor types, each tensor's rows repeated to its full count."""
    import numpy as np
    from gguf import GGML_QUANT_VERSION, GGMLQuantizationType, GGUFWriter

    from pytest_tee.checkpoints.gguf_files import read_header

    full_shapes = {name: shape for name, shape, _kind in tensor_layout(checkpoint)}
    with open(sample, "rb") as source:
        header = read_header(source)
        arch = _architecture(checkpoint)
        writer = GGUFWriter(target, arch)
        _add_metadata(writer, checkpoint, arch)
        writer.add_quantization_version(GGML_QUANT_VERSION)
        writer.add_file_type(file_type)
        plan = []
        for entry in header.tensors:
            # GGUF order: row length first, then rows (and experts); numpy order: experts, rows, row length.
            sample_rows = math.prod(entry.shape[1:])
            row_bytes = entry.n_bytes // sample_rows
            full = full_shapes[entry.name]
            rows = math.prod(full[:-1])
            byte_shape = (*full[:-1], row_bytes)
            raw = GGMLQuantizationType(entry.type_id)
            writer.add_tensor_info(entry.name, byte_shape, np.dtype(np.uint8), rows * row_bytes, raw_dtype=raw)
            plan.append((entry, byte_shape))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for entry, byte_shape in plan:
            source.seek(entry.offset)
            rows_read = np.frombuffer(source.read(entry.n_bytes), dtype=np.uint8)
            # Whole quantized rows, repeated in order (a stack of experts: across the experts too).
            writer.write_tensor_data(np.resize(rows_read, byte_shape))
        writer.close()


def _architecture(checkpoint: Checkpoint) -> str:
    if checkpoint.family in _DEEPSEEK:
        return "deepseek2"
    return "qwen2" if checkpoint.family == "qwen2" else "llama"


def _add_metadata(writer: Any, checkpoint: Checkpoint, arch: str) -> None:
    cfg = checkpoint.config
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    writer.add_name(f"{checkpoint.title or checkpoint.id} (pytest-tee synthetic weights)")
    writer.add_context_length(int(cfg.get("max_position_embeddings", 4096)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(cfg["num_hidden_layers"]))
    writer.add_feed_forward_length(int(cfg["intermediate_size"]))
    writer.add_head_count(heads)
    # deepseek2 (MLA) is written as MQA: one KV head, the compressed latent; the others as configured.
    writer.add_head_count_kv(1 if checkpoint.family in _DEEPSEEK else int(cfg["num_key_value_heads"]))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    if checkpoint.family in _DEEPSEEK:
        _add_deepseek2_metadata(writer, cfg)
    else:
        writer.add_rope_dimension_count(int(cfg.get("head_dim") or hidden // heads))
    writer.add_vocab_size(int(cfg["vocab_size"]))
    _add_tokenizer(writer, checkpoint)


def _add_deepseek2_metadata(writer: Any, cfg: Any) -> None:
    """The keys convert_hf_to_gguf.py's DeepseekV2Model writes (MLA as MQA: one KV head of kv_lora_rank + rope)."""
    from gguf import ExpertGatingFuncType, RopeScalingType

    nope, rope, kv_rank = int(cfg["qk_nope_head_dim"]), int(cfg["qk_rope_head_dim"]), int(cfg["kv_lora_rank"])
    writer.add_leading_dense_block_count(int(cfg.get("first_k_dense_replace", 0)))
    if cfg.get("q_lora_rank"):
        writer.add_q_lora_rank(int(cfg["q_lora_rank"]))
    writer.add_kv_lora_rank(kv_rank)
    writer.add_key_length(kv_rank + rope)
    writer.add_value_length(kv_rank)
    writer.add_key_length_mla(nope + rope)
    writer.add_value_length_mla(int(cfg["v_head_dim"]))
    writer.add_expert_feed_forward_length(int(cfg["moe_intermediate_size"]))
    writer.add_expert_count(int(cfg["n_routed_experts"]))
    writer.add_expert_used_count(int(cfg["num_experts_per_tok"]))
    writer.add_expert_shared_count(int(cfg.get("n_shared_experts") or 0))
    writer.add_expert_group_count(int(cfg.get("n_group") or 1))
    writer.add_expert_group_used_count(int(cfg.get("topk_group") or 1))
    writer.add_expert_weights_scale(float(cfg.get("routed_scaling_factor", 1.0)))
    writer.add_expert_weights_norm(bool(cfg.get("norm_topk_prob", False)))
    sigmoid = cfg.get("scoring_func", "softmax") == "sigmoid"
    writer.add_expert_gating_func(ExpertGatingFuncType.SIGMOID if sigmoid else ExpertGatingFuncType.SOFTMAX)
    writer.add_rope_dimension_count(rope)
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "yarn" and "factor" in scaling:
        writer.add_rope_scaling_type(RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
        writer.add_rope_scaling_yarn_log_mul(0.1 * float(scaling.get("mscale_all_dim", 0.0)))


def _add_tokenizer(writer: Any, checkpoint: Checkpoint) -> None:
    """A minimal valid SentencePiece-style vocabulary: the checkpoint's size, byte tokens, its BOS/EOS ids."""
    from gguf import TokenType

    vocab = checkpoint.vocab_size
    bos, eos = _special_id(checkpoint, "bos_token_id", 1), _special_id(checkpoint, "eos_token_id", 2)
    free = (i for i in range(vocab) if i not in (bos, eos))
    unk = next(free)
    byte_ids = [next(free) for _ in range(256)]
    tokens = [f"<t{i}>" for i in range(vocab)]
    types = [int(TokenType.NORMAL)] * vocab
    for byte, token_id in enumerate(byte_ids):
        tokens[token_id], types[token_id] = f"<0x{byte:02X}>", int(TokenType.BYTE)
    tokens[unk], types[unk] = "<unk>", int(TokenType.UNKNOWN)
    tokens[bos], types[bos] = "<s>", int(TokenType.CONTROL)
    tokens[eos], types[eos] = "</s>", int(TokenType.CONTROL)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types(types)
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(unk)
    writer.add_add_bos_token(False)


def _special_id(checkpoint: Checkpoint, key: str, default: int) -> int:
    value = checkpoint.config.get(key)
    return int(value) if isinstance(value, int) and 0 <= value < checkpoint.vocab_size else default


def _seeded_block(seed: int) -> np.ndarray:
    """Magnitudes between 0.085 and 1.7 (× 1/√fan_in later), random signs: never zero, never denormal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(0.05, 1.0, _BLOCK_ELEMENTS).astype(np.float32) * 1.7
    return np.where(rng.random(_BLOCK_ELEMENTS) < 0.5, -magnitude, magnitude).astype(np.float32)


def _values(
    checkpoint: Checkpoint, name: str, shape: tuple[int, ...], kind: str, block: np.ndarray, index: int
) -> np.ndarray:
    import numpy as np

    if kind == "norm":
        return np.ones(shape, dtype=np.float32)
    if kind == "rope":
        factors = _llama3_rope(checkpoint.config)
        assert factors is not None
        return factors
    count = math.prod(shape)
    offset = (index * 7919 + count) % block.size  # each tensor starts elsewhere in the block
    flat = np.resize(np.roll(block, -offset), count)
    if kind in ("bias", "buffer"):
        return (flat * _BIAS_SCALE).reshape(shape).astype(np.float32)
    scale = 1.0 / math.sqrt(shape[-1])  # fan_in: GGUF rows are outputs, columns inputs
    if kind == "router":
        return (flat * scale).astype(np.float32).reshape(shape)
    return (flat * scale).astype(np.float16).reshape(shape)


def _llama3_rope(cfg: Any) -> np.ndarray | None:
    """llama3 rope scaling factors (as convert_hf_to_gguf.py writes them into rope_freqs.weight), else None."""
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type") != "llama3":
        return None
    import numpy as np

    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    dim = int(cfg.get("head_dim") or hidden // heads)
    base = float(cfg.get("rope_theta", 10000.0))
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old = float(scaling["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old / low, old / high
    factors = []
    for freq in 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


# --------------------------------------------------------------------------------------------------- quantizing


def quantize(source: Path, target: Path, quant: str, *, threads: int | None = None) -> None:
    """llama.cpp's own quantizer (``llama_model_quantize``), as llama-quantize runs it."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANTS[quant].ftype
    params.nthread = threads or len(os.sched_getaffinity(0))
    with quiet_llama():
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0:
        raise SyntheticGGUFError(f"llama_model_quantize({source.name} → {quant}) failed with status {status}")


@contextlib.contextmanager
def quiet_llama() -> Iterator[None]:
    """llama.cpp logs every tensor while loading and quantizing; keep it to errors while we work."""
    import logging

    logger = logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    modified: float
    partial: bool  # a build in progress or one that died


def list_cache(root: Path | None = None) -> list[CacheEntry]:
    folder = (root or cache_dir()) / "gguf"
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".lock" or not path.is_file():
            continue
        stat = path.stat()
        entries.append(CacheEntry(path, stat.st_size, stat.st_mtime, path.name.endswith(".partial")))
    return entries


def clear_cache(root: Path | None = None) -> list[CacheEntry]:
    """Remove every cached synthetic GGUF (and leftovers of interrupted builds); what was removed."""
    removed = []
    for entry in list_cache(root):
        entry.path.unlink(missing_ok=True)
        removed.append(entry)
    folder = (root or cache_dir()) / "gguf"
    for lock in folder.glob("*.lock") if folder.is_dir() else ():
        lock.unlink(missing_ok=True)
    return removed
