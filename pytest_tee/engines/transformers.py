"""The transformers engine: ``generate`` in eager mode, weights in a torch dtype (real or synthetic).

Loading is ``checkpoints.loading.load_model``; a round is ``measure.timing.RoundRunner`` (one ``generate`` call,
exactly N greedy tokens with EOS ignored, streamer stamps per token). This module only puts them behind the engine
interface and says what decides their speed: torch's thread counts and the dtype.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from pytest_tee.engines.base import LoadRequest
from pytest_tee.records import EngineInfo

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.checkpoints.prompts import Prompt
    from pytest_tee.measure.timing import RoundRunner, Workload

NAME = "transformers"


class TransformersEngine:
    name = NAME

    def load(self, checkpoint: Checkpoint, request: LoadRequest) -> LoadedModel:
        from pytest_tee.checkpoints.loading import load_model

        return load_model(
            checkpoint,
            device=request.device,
            dtype=request.precision,
            weights_mode=request.weights_mode,
            # A .gguf (or a folder of them) given with --tee-model-path is the llama.cpp engine's, not ours.
            model_paths={ident: path for ident, path in request.model_paths.items() if path.is_dir()},
            workload=request.workload,
            available_bytes=request.available_bytes,
            dtype_reason=request.precision_reason,
            seed=request.seed,
        )

    def cache_key(self, request: LoadRequest) -> tuple[Any, ...]:
        return (NAME, request.device, request.precision, request.weights_mode)

    def unavailable_reason(self, execution_env: str, device: str) -> str | None:
        return None  # the environments offered already depend on torch seeing the device

    def rounds(self, loaded: LoadedModel, prompt: Prompt, workload: Workload, threads: int | None) -> RoundRunner:
        from pytest_tee.measure.timing import RoundRunner

        apply_threads(threads)
        device = str(loaded.device or "cpu")
        where = input_device(loaded, device)
        return RoundRunner(loaded.model, prompt.input_ids.to(where), prompt.attention_mask.to(where), workload, device)

    def describe(self, loaded: LoadedModel) -> EngineInfo:
        import torch

        settings = {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}
        return EngineInfo(
            name=NAME,
            quantization=str(loaded.dtype or "unknown"),
            build={name: _version(name) for name in ("torch", "transformers")},
            settings=settings,
            # The thread count is already a top-level comparison-key entry; the dtype is the quantization.
            key={},
            weight_bytes=_weight_bytes(loaded),
        )


def apply_threads(requested: int | None) -> dict[str, int]:
    """Set torch's intra-op threads to --tee-threads (when given); the counts in force, for the record."""
    import torch

    if requested is not None and torch.get_num_threads() != requested:
        torch.set_num_threads(requested)
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


def input_device(loaded: Any, device: str) -> Any:
    # With accelerate placement the inputs go where the embeddings are.
    try:
        return loaded.model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return device


def _weight_bytes(loaded: LoadedModel) -> int | None:
    checkpoint = getattr(loaded, "checkpoint", None)
    if checkpoint is None:
        return None
    try:
        return int(checkpoint.weight_bytes(str(loaded.dtype)))
    except (ValueError, KeyError, AttributeError):
        return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
