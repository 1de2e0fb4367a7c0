"""Which dtype to load a model in on a device, and why (the reason is stored with every result)."""

from __future__ import annotations

from collections.abc import Iterable

DTYPES = ("bfloat16", "float16", "float32")
REQUESTS = ("auto", *DTYPES)

_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bf16 matmul support
_FP16_CPU_FLAGS = ("amx_fp16", "avx512_fp16")


def choose_dtype(
    requested: str,
    device: str,
    cpu_flags: Iterable[str],
    *,
    cuda_supports_bf16: bool = True,
) -> tuple[str, str]:
    """``(dtype, reason)`` for loading a model on ``device`` ("cpu", "cuda", "cuda:1", …).

    ``auto`` picks bfloat16 on CUDA and on CPUs with native bf16 matmuls (AMX-BF16 or AVX512-BF16), float32 on
    other CPUs (bf16 would be emulated there, slower than float32). An explicit dtype is used as given; the
    reason says when it is a slow choice for the device. ``cuda_supports_bf16=False`` (GPUs before Ampere) makes
    ``auto`` pick float16 on CUDA.
    """
    value = str(requested).strip().lower()
    if value not in REQUESTS:
        raise ValueError(f"dtype {requested!r} is not one of {', '.join(REQUESTS)}")
    flags = {flag.strip().lower() for flag in cpu_flags}
    on_cuda = str(device).startswith("cuda")
    if value == "auto":
        return _auto(on_cuda, flags, cuda_supports_bf16)
    return value, _explicit_reason(value, on_cuda, flags, cuda_supports_bf16)


def _auto(on_cuda: bool, flags: set[str], cuda_supports_bf16: bool) -> tuple[str, str]:
    if on_cuda:
        if cuda_supports_bf16:
            return "bfloat16", "auto: CUDA device with native bfloat16"
        return "float16", "auto: this CUDA device has no native bfloat16 (compute capability below 8.0)"
    present = [flag for flag in _BF16_CPU_FLAGS if flag in flags]
    if present:
        return "bfloat16", f"auto: CPU has {_names(present)}"
    return "float32", "auto: CPU has neither AMX-BF16 nor AVX512-BF16, so bfloat16 would be emulated (slower)"


def _explicit_reason(dtype: str, on_cuda: bool, flags: set[str], cuda_supports_bf16: bool) -> str:
    if on_cuda:
        if dtype == "bfloat16" and not cuda_supports_bf16:
            return "requested; this CUDA device has no native bfloat16, so it is emulated (slow)"
        return "requested"
    if dtype == "bfloat16" and not any(flag in flags for flag in _BF16_CPU_FLAGS):
        return "requested; this CPU has neither AMX-BF16 nor AVX512-BF16, so bfloat16 matmuls are emulated (slow)"
    if dtype == "float16" and not any(flag in flags for flag in _FP16_CPU_FLAGS):
        return "requested; float16 is slow on CPU (no AMX-FP16/AVX512-FP16 here: most kernels convert or emulate)"
    return "requested"


def _names(flags: list[str]) -> str:
    return " and ".join(flag.upper().replace("_", "-") for flag in flags)
