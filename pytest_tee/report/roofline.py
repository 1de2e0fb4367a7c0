"""How close a decode rate is to the memory-bandwidth limit.

Decoding one token per sequence reads every weight once (shared by the batch) and, per sequence, the KV cache
of the context so far. At batch B and a decode rate of R tok/s (tokens of all sequences), the model takes R / B
steps per second, each reading

    bytes per step = weight bytes + B × KV bytes per token × mean context length,

so it moves ``R / B × bytes per step`` bytes per second. Divided by the measured read bandwidth that is the
fraction of the bandwidth limit reached: near 1 means decode is memory bound and only faster memory (or fewer
bytes: a smaller dtype) helps; far below 1 means time goes elsewhere (compute, threads, Python, the TEE).

Approximations, stated in the report: the mean context of decode steps 2…N is prompt + N/2 tokens; an untied
input embedding is not counted (a step reads one row of it); a mixture-of-experts model reads only the active
experts, which the parameter count does not know, so its fraction is overstated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pytest_tee.report.data import Workload

DTYPE_BYTES = {
    "float32": 4,
    "float": 4,
    "float16": 2,
    "half": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int8": 1,
    "uint8": 1,
}


def dtype_bytes(dtype: Any) -> int | None:
    name = str(dtype or "").strip().lower().removeprefix("torch.")
    return DTYPE_BYTES.get(name)


@dataclass(frozen=True)
class CheckpointShape:
    """What the roofline needs about a checkpoint beyond the stored parameter count (from the catalogue)."""

    kv_bytes_per_token: float | None  # in the run's dtype, per sequence
    untied_embedding_parameters: int  # input embedding parameters a decode step does not read
    mixture_of_experts: bool
    note: str | None  # why something is missing


@cache
def checkpoint_shape(checkpoint_id: str, dtype: str) -> CheckpointShape:
    """Looked up in ``pytest_tee.checkpoints.catalogue`` when it offers ``get(id)``; absent facts are noted."""
    try:
        from pytest_tee.checkpoints import catalogue

        entry = catalogue.get(checkpoint_id)
    except (ImportError, AttributeError, KeyError):  # an older catalogue or an id it does not know: degrade
        return CheckpointShape(None, 0, False, "KV cache not counted: the checkpoint catalogue does not describe it")
    config = getattr(entry, "config", None)
    config = config if isinstance(config, Mapping) else {}
    kv: float | None = None
    note: str | None = None
    try:
        kv = float(entry.kv_cache_bytes_per_token(dtype))
    except (AttributeError, KeyError, TypeError, ValueError):  # no such method, a config gap, a dtype it lacks
        note = "KV cache not counted: the catalogue gives no KV-cache size for this checkpoint"
    untied = 0
    vocab, hidden = config.get("vocab_size"), config.get("hidden_size")
    if config.get("tie_word_embeddings") is False and isinstance(vocab, int) and isinstance(hidden, int):
        untied = vocab * hidden
    moe = bool(getattr(entry, "is_moe", False)) or any(
        config.get(key) for key in ("n_routed_experts", "num_experts", "num_local_experts")
    )
    return CheckpointShape(kv, untied, bool(moe), note)


@dataclass(frozen=True)
class Roofline:
    bandwidth_gbps: float
    bandwidth_source: str
    weight_bytes: float
    kv_bytes_per_token: float | None
    mean_context: float
    bytes_per_step: float
    achieved_gbps: float
    fraction: float
    fraction_ci95: tuple[float, float] | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bandwidth_gbps": self.bandwidth_gbps,
            "bandwidth_source": self.bandwidth_source,
            "weight_bytes": self.weight_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "mean_context_tokens": self.mean_context,
            "bytes_per_step": self.bytes_per_step,
            "achieved_gbps": self.achieved_gbps,
            "fraction": self.fraction,
            "fraction_ci95": list(self.fraction_ci95) if self.fraction_ci95 else None,
            "notes": list(self.notes),
        }


def roofline(
    *,
    checkpoint_id: str,
    parameters: int | None,
    dtype: Any,
    workload: Workload,
    decode_tps: float,
    decode_ci95: tuple[float, float] | None,
    bandwidth_gbps: float,
    bandwidth_source: str,
    weight_bytes: int | None = None,
    quantization: str = "",
) -> tuple[Roofline | None, str | None]:
    """The fraction of the bandwidth limit this decode rate reaches, or None and the reason it cannot be given.

    ``weight_bytes`` (recorded by the engine: for GGUF the real tensor bytes a decode step reads, input embedding
    excluded) replaces parameters × dtype size; quantized weights are not a whole number of bytes per weight.
    """
    no_shape = "the workload shape was not recorded"
    if weight_bytes:
        if not _has_shape(workload):
            return None, no_shape
        shape = checkpoint_shape(checkpoint_id, "float16")  # llama.cpp's KV cache is f16 by default
        notes = [shape.note] if shape.note else []
        notes.append(f"{quantization or 'engine'} weights: the recorded tensor bytes a decode step reads")
        return _fraction(
            float(weight_bytes), shape, notes, workload, decode_tps, decode_ci95, bandwidth_gbps, bandwidth_source
        ), None
    itemsize = dtype_bytes(dtype)
    if itemsize is None:
        return None, f"dtype {dtype!r} has no known size"
    if not parameters:
        return None, "the parameter count was not recorded"
    if not _has_shape(workload):
        return None, no_shape
    shape = checkpoint_shape(checkpoint_id, str(dtype))
    notes = [shape.note] if shape.note else []
    if shape.untied_embedding_parameters and shape.untied_embedding_parameters < parameters:
        notes.append("input embedding not counted (a step reads one row of it)")
    if shape.mixture_of_experts:
        notes.append("mixture of experts: all experts counted, so the fraction is overstated")
    untied = shape.untied_embedding_parameters if shape.untied_embedding_parameters < parameters else 0
    dense_bytes = float((parameters - untied) * itemsize)
    return _fraction(
        dense_bytes, shape, notes, workload, decode_tps, decode_ci95, bandwidth_gbps, bandwidth_source
    ), None


def _has_shape(workload: Workload) -> bool:
    return bool(workload.batch) and workload.prompt_tokens is not None and bool(workload.new_tokens)


def _fraction(
    weight_bytes: float,
    shape: CheckpointShape,
    notes: list[str],
    workload: Workload,
    decode_tps: float,
    decode_ci95: tuple[float, float] | None,
    bandwidth_gbps: float,
    bandwidth_source: str,
) -> Roofline:
    """Bytes one decode step reads (weights, plus the KV cache at the mean context) against the bandwidth."""
    batch = workload.batch or 1  # callers check the shape first
    mean_context = (workload.prompt_tokens or 0) + (workload.new_tokens or 0) / 2
    kv_bytes = (shape.kv_bytes_per_token or 0.0) * mean_context * batch
    bytes_per_step = weight_bytes + kv_bytes
    achieved = decode_tps / batch * bytes_per_step / 1e9
    fraction = achieved / bandwidth_gbps
    ci = (fraction * decode_ci95[0] / decode_tps, fraction * decode_ci95[1] / decode_tps) if decode_ci95 else None
    return Roofline(
        bandwidth_gbps=bandwidth_gbps,
        bandwidth_source=bandwidth_source,
        weight_bytes=weight_bytes,
        kv_bytes_per_token=shape.kv_bytes_per_token,
        mean_context=mean_context,
        bytes_per_step=bytes_per_step,
        achieved_gbps=achieved,
        fraction=fraction,
        fraction_ci95=ci,
        notes=tuple(notes),
    )
