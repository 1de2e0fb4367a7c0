"""Memory preflight: will this checkpoint and workload fit, and where should its weights go?

The estimate is deliberately simple and a little generous, so a test skips with a clear message instead of being
killed by the OOM killer half-way through loading (or, in a TD, paging through lazily accepted memory):

- weights: ``Checkpoint.weight_bytes(dtype)`` (MoE routers stay float32);
- KV cache: ``kv_cache_bytes_per_token(dtype)`` × (prompt + new tokens) × batch;
- working memory: the last-token logits (batch × vocab in the model dtype, plus the two float32 copies
  ``generate`` makes for processors and scores), the prefill activations (batch × prompt × the widest layer
  activation × 4 live tensors) and one layer's attention scores (batch × heads × prompt² × 4 bytes — what eager
  softmax needs; SDPA needs less);
- margin: 10 % of weights + KV cache, plus 512 MiB for the runtime (allocator slack, kernels, library code).

Available memory: on CPU, ``MemAvailable`` from ``/proc/meminfo`` (psutil), lowered to the cgroup's headroom
when a memory limit is set; on CUDA, the free memory of each visible GPU (``torch.cuda.mem_get_info``). A model
larger than one GPU is placed with accelerate's ``device_map="auto"`` over the GPUs, offloading what is left to
CPU memory when that is needed and available.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint

MARGIN_FRACTION = 0.10
MARGIN_FIXED_BYTES = 512 * 2**20
_LIVE_ACTIVATIONS = 4  # gate, up, their product and the residual stream at the widest point of a layer
_GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    working: int
    margin: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.working + self.margin

    @property
    def runtime(self) -> int:
        """What the execution device needs besides the weights."""
        return self.kv_cache + self.working + self.margin

    def to_dict(self) -> dict[str, int]:
        return {
            "weights": self.weights,
            "kv_cache": self.kv_cache,
            "working": self.working,
            "margin": self.margin,
            "total": self.total,
        }

    def describe(self) -> str:
        return (
            f"about {gib(self.total)} (weights {gib(self.weights)} + KV cache {gib(self.kv_cache)} + working "
            f"{gib(self.working)} + margin {gib(self.margin)})"
        )


@dataclass(frozen=True)
class PreflightResult:
    fits: bool
    strategy: str  # "single-device" | "accelerate-auto" | "does-not-fit"
    device: str
    estimate: MemoryEstimate
    available: dict[str, int]  # device name → bytes available to us
    available_source: str
    max_memory: dict[Any, int] | None = None  # for accelerate (GPU index or "cpu" → bytes) when spreading
    offload: str | None = None  # "cpu" when part of the weights live in CPU memory
    message: str = ""

    def placement(self) -> dict[str, Any]:
        if self.strategy == "single-device":
            return {"strategy": "single-device", "device": self.device}
        return {
            "strategy": self.strategy,
            "device": self.device,
            "offload": self.offload,
            "max_memory": {str(key): value for key, value in (self.max_memory or {}).items()},
        }


def gib(n: int | float) -> str:
    return f"{n / _GIB:.2f} GiB"


def estimate_memory(checkpoint: Checkpoint, dtype: str, workload: tuple[int, int, int]) -> MemoryEstimate:
    """Bytes needed to run ``generate`` for ``workload`` = (prompt_tokens, new_tokens, batch)."""
    from pytest_tee.checkpoints.catalogue import DTYPE_BYTES

    prompt_tokens, new_tokens, batch = (int(v) for v in workload)
    itemsize = DTYPE_BYTES[dtype]
    weights = checkpoint.weight_bytes(dtype)
    kv_cache = checkpoint.kv_cache_bytes_per_token(dtype) * (prompt_tokens + new_tokens) * batch
    logits = batch * checkpoint.vocab_size * (itemsize + 2 * 4)
    activations = batch * prompt_tokens * checkpoint.largest_layer_width() * itemsize * _LIVE_ACTIVATIONS
    heads = int(checkpoint.config["num_attention_heads"])
    scores = batch * heads * prompt_tokens * prompt_tokens * 4
    working = logits + activations + scores
    margin = int(MARGIN_FRACTION * (weights + kv_cache)) + MARGIN_FIXED_BYTES
    return MemoryEstimate(weights=weights, kv_cache=kv_cache, working=working, margin=margin)


def preflight(
    checkpoint: Checkpoint,
    *,
    device: str,
    dtype: str,
    workload: tuple[int, int, int],
    available_bytes: int | None = None,
) -> PreflightResult:
    """Decide whether and how the model fits; ``available_bytes`` overrides what the device reports."""
    estimate = estimate_memory(checkpoint, dtype, workload)
    if available_bytes is not None:
        available, source = {_device_name(device): int(available_bytes)}, "given"
    else:
        available, source = available_memory(device)
    primary = _device_name(device)
    if estimate.total <= available.get(primary, 0):
        return PreflightResult(True, "single-device", device, estimate, available, source)
    if primary.startswith("cuda") and len(available) > 1:
        spread = _spread(estimate, available, primary)
        if spread is not None:
            max_memory, offload = spread
            return PreflightResult(
                True, "accelerate-auto", device, estimate, available, source, max_memory=max_memory, offload=offload
            )
    where = ", ".join(f"{name} {gib(free)}" for name, free in available.items())
    message = (
        f"{checkpoint.id} in {dtype} for prompt {workload[0]} + {workload[1]} new tokens × batch {workload[2]} needs "
        f"{estimate.describe()}, but only {where} is available ({source})"
    )
    return PreflightResult(False, "does-not-fit", device, estimate, available, source, message=message)


def available_memory(device: str) -> tuple[dict[str, int], str]:
    """Bytes available on ``device`` (and, for CUDA, on the other visible GPUs and in CPU memory)."""
    name = _device_name(device)
    if not name.startswith("cuda"):
        cpu, source = cpu_available_bytes()
        return {"cpu": cpu}, source
    import torch

    available: dict[str, int] = {}
    indices: list[int] = list(range(torch.cuda.device_count()))
    requested = torch.device(device)
    if requested.index is not None:  # a pinned GPU first; the others may still take layers when spreading
        indices = [requested.index, *(i for i in indices if i != requested.index)]
    for index in indices:
        free, _total = torch.cuda.mem_get_info(index)
        available[f"cuda:{index}"] = int(free)
    cpu, cpu_source = cpu_available_bytes()
    available["cpu"] = cpu
    return available, f"torch.cuda.mem_get_info; CPU {cpu_source}"


def cpu_available_bytes(root: str | Path = "/") -> tuple[int, str]:
    """MemAvailable, lowered to the cgroup memory headroom when a limit applies; and what it rests on."""
    import psutil

    available, source = int(psutil.virtual_memory().available), "MemAvailable"
    headroom = cgroup_memory_headroom(root)
    if headroom is not None and headroom < available:
        return headroom, "cgroup memory limit minus usage"
    return available, source


def cgroup_memory_headroom(root: str | Path = "/") -> int | None:
    base = Path(root) / "sys/fs/cgroup"
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        limit, usage = _read_int(base / limit_file), _read_int(base / usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 "no limit" is a huge number
            return max(limit - usage, 0)
    return None


# ---------------------------------------------------------------------------------------------------------------


def _device_name(device: str) -> str:
    text = str(device)
    return "cuda:0" if text == "cuda" else text


def _spread(
    estimate: MemoryEstimate, available: Mapping[str, int], primary: str
) -> tuple[dict[Any, int], str | None] | None:
    """accelerate max_memory spreading the weights over GPUs (primary keeps room to run), then CPU memory."""
    gpus = {name: free for name, free in available.items() if name.startswith("cuda")}
    primary_room = gpus.get(primary, 0) - estimate.runtime
    if primary_room <= 0:
        return None
    max_memory: dict[Any, int] = {}
    room = 0
    for name, free in gpus.items():
        share = primary_room if name == primary else max(free - MARGIN_FIXED_BYTES, 0)
        max_memory[int(name.split(":")[1])] = share
        room += share
    if estimate.weights <= room:
        return max_memory, None
    cpu_room = available.get("cpu", 0) - MARGIN_FIXED_BYTES
    if estimate.weights <= room + cpu_room:
        max_memory["cpu"] = cpu_room
        return max_memory, "cpu"
    return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def summarize_device_map(device_map: Mapping[str, Any]) -> dict[str, int]:
    """How many device-map entries (modules) went to each device: short enough to store with every result."""
    summary: dict[str, int] = {}
    for target in device_map.values():
        key = f"cuda:{target}" if isinstance(target, int) else str(target)
        summary[key] = summary.get(key, 0) + 1
    return summary
