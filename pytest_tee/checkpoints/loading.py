"""Loading a checkpoint onto a device: preflight, weights resolution, then real or synthetic weights.

``load_model`` is what the ``deepseek_model`` fixture calls (through a ``ModelCache`` holding one model at a
time). It raises :class:`ModelUnavailable` — the fixture skips with its message — when the model does not fit in
memory or ``--tee-weights=real`` finds nothing on disk.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tee.checkpoints.weights import ModelUnavailable, WeightsResolution, resolve_weights

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.preflight import PreflightResult

__all__ = ["LoadedModel", "ModelCache", "ModelUnavailable", "load_model"]


@dataclass
class LoadedModel:
    """A model ready to generate and everything stored with its results about how it was loaded.

    ``engine`` names the engine that loaded it (``pytest_tee.engines``); ``model`` is that engine's own object (a
    transformers model, a ``llama_cpp.Llama``, …). ``dtype`` is the precision the weights are stored in as measured
    (a torch dtype name, or a GGUF quantization such as ``Q4_K_M``). ``engine_state`` holds the engine's load-time
    facts (settings, file sizes) for ``Engine.describe``.
    """

    checkpoint: Checkpoint
    model: Any
    tokenizer: Any = None
    weights: str = "synthetic"  # "real" | "synthetic"
    dtype: str = ""
    device: str = "cpu"
    placement: dict[str, Any] = field(default_factory=dict)
    weights_source: str = ""  # where the weights came from / where we looked
    dtype_reason: str = ""
    load_seconds: float = 0.0
    engine: str = "transformers"
    vocab_size: int | None = None  # None: the model's config says (transformers)
    engine_state: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Plain data for stored results (no object references, no prompt or tokenizer content)."""
        return {
            "checkpoint": self.checkpoint.to_dict(),
            "weights": self.weights,
            "weights_source": self.weights_source,
            "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "device": self.device,
            "placement": _plain(self.placement),
            "tokenizer": self.tokenizer is not None,
            "load_seconds": round(float(self.load_seconds), 3),
            "engine": self.engine,
        }


def load_model(
    checkpoint: Checkpoint,
    *,
    device: str,
    dtype: str,
    weights_mode: str,
    model_paths: Mapping[str, Path],
    workload: tuple[int, int, int],
    available_bytes: int | None = None,
    dtype_reason: str = "",
    seed: int = 0,
) -> LoadedModel:
    """Preflight, resolve the weights, load them on ``device`` in ``dtype``, ``eval()``; see the module docstring.

    ``dtype`` may be ``auto`` (decided here from the host's CPU flags); ``workload`` is (prompt_tokens,
    new_tokens, batch). ``available_bytes`` replaces the memory the device reports (for tests and dry runs).
    """
    from pytest_tee.checkpoints.preflight import preflight

    started = time.perf_counter()
    if dtype == "auto":
        from pytest_tee.checkpoints.dtype import choose_dtype

        dtype, dtype_reason = choose_dtype("auto", device, _host_cpu_flags())
    check = preflight(checkpoint, device=device, dtype=dtype, workload=workload, available_bytes=available_bytes)
    if not check.fits:
        raise ModelUnavailable(check.message)
    resolution = resolve_weights(checkpoint, mode=weights_mode, model_paths=model_paths)
    if resolution.kind == "real":
        model, placement = _load_real(resolution, device=device, dtype=dtype, check=check)
    else:
        model, placement = _load_synthetic(checkpoint, device=device, dtype=dtype, check=check, seed=seed)
    model.eval()
    tokenizer, tokenizer_note = _load_tokenizer(resolution.tokenizer_path)
    placement["memory_estimate"] = check.estimate.to_dict()
    return LoadedModel(
        checkpoint=checkpoint,
        model=model,
        tokenizer=tokenizer,
        weights=resolution.kind,
        dtype=dtype,
        device=device,
        placement=placement,
        weights_source=resolution.source + tokenizer_note,
        dtype_reason=dtype_reason,
        load_seconds=time.perf_counter() - started,
    )


class ModelCache:
    """Holds at most one model: asking for another releases the current one first (models can be huge)."""

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._value: Any = None

    def get(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        if self._value is not None and self._key == key:
            return self._value
        self.clear()
        value = factory()
        self._key, self._value = key, value
        return value

    def clear(self) -> None:
        had_model = self._value is not None
        self._key, self._value = None, None
        if had_model:
            _release_memory()

    @property
    def key(self) -> Hashable | None:
        return self._key


# ---------------------------------------------------------------------------------------------------------------


def _load_real(
    resolution: WeightsResolution, *, device: str, dtype: str, check: PreflightResult
) -> tuple[Any, dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM

    from pytest_tee.checkpoints.synthetic import dtype_keyword

    assert resolution.path is not None
    kwargs: dict[str, Any] = {"local_files_only": True, dtype_keyword(): getattr(torch, dtype)}
    if check.strategy == "accelerate-auto":
        kwargs.update(device_map="auto", max_memory=check.max_memory)
    elif str(device) != "cpu":
        kwargs["device_map"] = {"": device}  # straight to the GPU, no CPU copy of the whole model
    model = AutoModelForCausalLM.from_pretrained(str(resolution.path), **kwargs)
    return model, _placement(check, getattr(model, "hf_device_map", None))


def _load_synthetic(
    checkpoint: Checkpoint, *, device: str, dtype: str, check: PreflightResult, seed: int
) -> tuple[Any, dict[str, Any]]:
    from pytest_tee.checkpoints import synthetic

    if check.strategy != "accelerate-auto":
        return synthetic.synthetic_model(checkpoint, dtype=dtype, device=device, seed=seed), _placement(check, None)
    from accelerate import infer_auto_device_map

    empty = synthetic.build_empty(checkpoint, dtype)
    device_map = infer_auto_device_map(
        empty,
        max_memory=check.max_memory,
        no_split_module_classes=list(getattr(empty, "_no_split_modules", None) or []),
    )
    del empty
    model = synthetic.synthetic_model(checkpoint, dtype=dtype, device=device, seed=seed, device_map=device_map)
    return model, _placement(check, device_map)


def _placement(check: PreflightResult, device_map: Mapping[str, Any] | None) -> dict[str, Any]:
    from pytest_tee.checkpoints.preflight import summarize_device_map

    placement = check.placement()
    if device_map:
        placement["device_map"] = summarize_device_map(device_map)
    return placement


def _load_tokenizer(path: Path | None) -> tuple[Any, str]:
    """The tokenizer at ``path`` (or None) and a note for ``weights_source`` when one was there but unreadable."""
    if path is None:
        return None, ""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True), ""
    except (OSError, ValueError, KeyError, ImportError) as exc:
        # Synthetic prompt ids still work without it; say why the tokenizer was not used.
        return None, f"; tokenizer at {path} not usable ({type(exc).__name__}: {exc})"


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _host_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return tuple(line.split(":", 1)[1].split())
    except OSError:
        pass
    return ()


def _plain(value: Any) -> Any:
    """JSON-ready copy: dict keys become strings, tuples lists, anything else unknown its str()."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
