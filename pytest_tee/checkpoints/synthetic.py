"""Synthetic weights: a checkpoint's exact architecture and shapes, filled fast and deterministically.

``AutoModelForCausalLM.from_config`` spends ~30 s initializing a 1.5B model on two cores, and the fast
alternatives (``no_init_weights``, ``to_empty``) leave memory uninitialized — NaNs and denormals that change CPU
kernel speed and make greedy decoding degenerate. Here the model is built on the meta device (no memory, no
init), then every parameter is allocated once on its target device and filled by copying from a small seeded
random block:

- weights (≥ 2-D) get values of variance 1/fan_in whose magnitudes lie between 0.085 and 1.7 times
  1/√fan_in (never zero, never denormal even in float16), so each linear layer roughly preserves activation
  scale and logits stay O(1) through every layer;
- RMSNorm weights are exactly 1; biases are small (× 0.02);
- the block is a prime number of elements long and each tensor starts at an offset derived from the seed and
  its name, so no two tensors (and no two rows of a matrix) line up; the copy is one strided memcpy per tensor,
  bound by memory bandwidth rather than by a random number generator;
- non-persistent buffers (rotary ``inv_freq`` / ``original_inv_freq``) are recomputed by rebuilding their module
  from the config, exactly as a normally constructed model computes them; persistent buffers we know are zero in
  a fresh model (DeepSeek-V3's ``e_score_correction_bias``) are zeroed; any other buffer is an error, so a new
  architecture fails loudly instead of benchmarking garbage;
- tied embeddings stay tied (the meta model's shared parameter maps to one new tensor).

Filling fresh memory is bound by first-touch page faults. Huge pages (an anonymous mapping with
``madvise(MADV_HUGEPAGE)``) cut the faults 40× but were slower on a fragmented VM, where the kernel compacts memory
on each fault (``defrag=madvise``), so plain ``torch.empty`` is used.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_tee.compat import device_in_map, non_persistent_buffer_names

if TYPE_CHECKING:
    import torch

    from pytest_tee.checkpoints.catalogue import Checkpoint

BLOCK_ELEMENTS = 1_048_573  # prime: periodic fills never align with a row length
_MIN_MAGNITUDE = 0.05  # fraction of the maximum; keeps every value far from zero and from denormals
_BIAS_SCALE = 0.02
_ZEROED_PERSISTENT_BUFFERS = frozenset({"e_score_correction_bias"})


class SyntheticWeightsError(RuntimeError):
    """The model has a buffer or parameter we do not know how to fill correctly."""


def build_empty(checkpoint: Checkpoint, dtype: str) -> Any:
    """The checkpoint's model on the meta device: exact shapes and dtypes, no memory, no initialization."""
    import torch
    from transformers import AutoModelForCausalLM

    config = checkpoint.make_config()
    with torch.device("meta"), _no_init_weights():
        model = AutoModelForCausalLM.from_config(config, **{dtype_keyword(): getattr(torch, dtype)})
    # no_init_weights also skips transformers' init_weights, which is where embeddings get tied.
    model.tie_weights()
    return model


def synthetic_model(
    checkpoint: Checkpoint,
    *,
    dtype: str,
    device: str = "cpu",
    seed: int = 0,
    device_map: Mapping[str, Any] | None = None,
) -> Any:
    """A ready-to-run model with synthetic weights, in eval mode without gradients.

    ``device_map`` (module name → device, as accelerate's ``infer_auto_device_map`` returns) places each part on
    its own device and dispatches the model with accelerate hooks; otherwise everything goes to ``device``.
    """
    model = build_empty(checkpoint, dtype)
    materialize(model, device=device, seed=seed, device_map=device_map)
    if device_map is not None and len(set(device_map.values())) > 1:
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map=dict(device_map))
    model.eval()
    return model


def materialize(model: Any, *, device: str = "cpu", seed: int = 0, device_map: Mapping[str, Any] | None = None) -> None:
    """Replace every meta tensor of ``model`` with a filled one on its device (in place)."""
    import torch

    with torch.no_grad():
        filler = _BlockFiller(seed)
        _fill_parameters(model, filler, device, device_map)
        _rebuild_buffers(model, device, device_map)
    _check_nothing_on_meta(model)
    model.requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------


class _BlockFiller:
    """Copies from one seeded random block, scaled and cast per (scale, dtype, device) once."""

    def __init__(self, seed: int) -> None:
        import torch

        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        uniform = torch.rand(BLOCK_ELEMENTS, generator=generator, dtype=torch.float64) * 2 - 1
        values = torch.sign(uniform) * (_MIN_MAGNITUDE + (1 - _MIN_MAGNITUDE) * uniform.abs())
        values[values == 0] = _MIN_MAGNITUDE  # sign(0) is 0; rand can return exactly 0
        values /= values.pow(2).mean().sqrt()  # unit variance
        self._unit = torch.cat([values, values]).float()  # doubled, so every offset has a full-length window
        self._scaled: dict[tuple[float, Any, str], torch.Tensor] = {}

    def block(self, scale: float, dtype: Any, device: Any) -> torch.Tensor:
        key = (scale, dtype, str(device))
        if key not in self._scaled:
            self._scaled[key] = (self._unit * scale).to(device=device, dtype=dtype)
        return self._scaled[key]

    def offset(self, name: str) -> int:
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "little") % BLOCK_ELEMENTS

    def fill(self, tensor: torch.Tensor, name: str, scale: float) -> None:
        block = self.block(scale, tensor.dtype, tensor.device)
        start = self.offset(name)
        window = block[start : start + BLOCK_ELEMENTS]
        flat = tensor.view(-1)
        whole, tail = divmod(flat.numel(), BLOCK_ELEMENTS)
        if whole:
            flat[: whole * BLOCK_ELEMENTS].view(whole, BLOCK_ELEMENTS).copy_(window.expand(whole, BLOCK_ELEMENTS))
        if tail:
            flat[whole * BLOCK_ELEMENTS :].copy_(window[:tail])


def _fill_parameters(model: Any, filler: _BlockFiller, device: str, device_map: Mapping[str, Any] | None) -> None:
    import torch

    replaced: dict[int, torch.nn.Parameter] = {}  # meta parameter id → its filled replacement (keeps ties)
    for module_name, module in model.named_modules():
        for param_name, param in list(module.named_parameters(recurse=False, remove_duplicate=False)):
            if id(param) in replaced:
                module.register_parameter(param_name, replaced[id(param)])
                continue
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            target = _device_for(full_name, device, device_map)
            tensor = torch.empty(param.shape, dtype=param.dtype, device=target)
            if _is_norm(module):
                tensor.fill_(1.0)
            elif tensor.dim() == 1:
                filler.fill(tensor, full_name, _BIAS_SCALE)
            else:
                filler.fill(tensor, full_name, 1.0 / math.sqrt(tensor.shape[-1]))
            new = torch.nn.Parameter(tensor, requires_grad=False)
            replaced[id(param)] = new
            module.register_parameter(param_name, new)


def _is_norm(module: Any) -> bool:
    # transformers matches norms by class name too: every model prefixes its own RMSNorm class.
    name = type(module).__name__
    return "RMSNorm" in name or "LayerNorm" in name


def _rebuild_buffers(model: Any, device: str, device_map: Mapping[str, Any] | None) -> None:
    import torch

    for module_name, module in list(model.named_modules()):
        own = dict(module.named_buffers(recurse=False, remove_duplicate=False))
        if not own:
            continue
        target = _device_for(module_name, device, device_map)
        transient = non_persistent_buffer_names(module)
        non_persistent = [name for name in own if name in transient]
        if non_persistent:
            fresh = _fresh_copy(module, module_name)
            fresh_buffers = dict(fresh.named_buffers(recurse=False))
            for name in non_persistent:
                module.register_buffer(name, fresh_buffers[name].to(target), persistent=False)
            # Attributes computed with the buffers (e.g. rotary attention_scaling) come from the same code path.
            for attr in ("attention_scaling", "max_seq_len_cached", "original_max_seq_len"):
                if hasattr(fresh, attr):
                    setattr(module, attr, getattr(fresh, attr))
        for name in own:
            if name in transient:
                continue
            if name not in _ZEROED_PERSISTENT_BUFFERS:
                raise SyntheticWeightsError(
                    f"{module_name}.{name}: persistent buffer of {type(module).__name__} has no known synthetic "
                    f"value (known: {', '.join(sorted(_ZEROED_PERSISTENT_BUFFERS))})"
                )
            module.register_buffer(name, torch.zeros(own[name].shape, dtype=own[name].dtype, device=target))


def _fresh_copy(module: Any, module_name: str) -> Any:
    """The same module built normally on the CPU from its config (how the model itself computes its buffers)."""
    config = getattr(module, "config", None)
    if config is None:
        raise SyntheticWeightsError(
            f"{module_name}: {type(module).__name__} has non-persistent buffers "
            f"({', '.join(sorted(non_persistent_buffer_names(module)))}) but no config to recompute them from"
        )
    try:
        return type(module)(config)
    except Exception as exc:  # a constructor we cannot call: say which module, not a bare traceback
        raise SyntheticWeightsError(
            f"{module_name}: cannot rebuild {type(module).__name__} from its config to recompute its buffers: {exc}"
        ) from exc


def _device_for(name: str, device: str, device_map: Mapping[str, Any] | None) -> Any:
    if not device_map:
        return device
    try:
        best = device_in_map(name, device_map)
    except ValueError:
        raise SyntheticWeightsError(f"{name}: not covered by the device map") from None
    if best == "disk":
        raise SyntheticWeightsError(f"{name}: disk offload is not supported for synthetic weights")
    return f"cuda:{best}" if isinstance(best, int) else best


def _check_nothing_on_meta(model: Any) -> None:
    left = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left:
        raise SyntheticWeightsError(f"tensors left without values: {', '.join(left[:5])}")


def dtype_keyword() -> str:
    """``dtype`` since transformers 4.56 (``torch_dtype`` is deprecated there); ``torch_dtype`` before."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _no_init_weights() -> Any:
    # transformers 5.x: transformers.initialization; 4.x: transformers.modeling_utils.
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()
