"""dtype choice: bfloat16 where the device runs it natively, float32 elsewhere; explicit requests pass through."""

from __future__ import annotations

import pytest

from pytest_tee.checkpoints.dtype import choose_dtype

SAPPHIRE_RAPIDS = ("fpu", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
ICE_LAKE = ("fpu", "avx2", "avx512f", "avx512_vnni")


def test_auto_on_cuda_is_bfloat16() -> None:
    assert choose_dtype("auto", "cuda", ()) == ("bfloat16", "auto: CUDA device with native bfloat16")
    assert choose_dtype("auto", "cuda:1", ICE_LAKE)[0] == "bfloat16"


def test_auto_on_cuda_without_bf16_is_float16() -> None:
    dtype, reason = choose_dtype("auto", "cuda", (), cuda_supports_bf16=False)
    assert dtype == "float16"
    assert "no native bfloat16" in reason


def test_auto_on_a_cpu_with_amx_or_avx512_bf16_is_bfloat16() -> None:
    dtype, reason = choose_dtype("auto", "cpu", SAPPHIRE_RAPIDS)
    assert dtype == "bfloat16"
    assert "AMX-BF16" in reason
    assert "AVX512-BF16" in reason
    assert choose_dtype("auto", "cpu", ["avx512_bf16"]) == ("bfloat16", "auto: CPU has AVX512-BF16")
    assert choose_dtype("auto", "cpu", ["amx_bf16"]) == ("bfloat16", "auto: CPU has AMX-BF16")


def test_auto_on_a_cpu_without_native_bf16_is_float32() -> None:
    dtype, reason = choose_dtype("auto", "cpu", ICE_LAKE)
    assert dtype == "float32"
    assert "emulated" in reason


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_explicit_values_pass_through(dtype: str) -> None:
    assert choose_dtype(dtype, "cpu", SAPPHIRE_RAPIDS)[0] == dtype
    assert choose_dtype(dtype.upper(), "cuda", ()) == (dtype, "requested")


def test_float16_on_cpu_says_it_is_slow() -> None:
    dtype, reason = choose_dtype("float16", "cpu", SAPPHIRE_RAPIDS)
    assert dtype == "float16"
    assert "slow" in reason
    assert choose_dtype("float16", "cpu", ("amx_fp16",)) == ("float16", "requested")


def test_bfloat16_on_a_cpu_without_it_says_it_is_emulated() -> None:
    dtype, reason = choose_dtype("bfloat16", "cpu", ICE_LAKE)
    assert dtype == "bfloat16"
    assert "emulated" in reason


def test_unknown_dtype_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="auto, bfloat16, float16, float32"):
        choose_dtype("int8", "cpu", ())
