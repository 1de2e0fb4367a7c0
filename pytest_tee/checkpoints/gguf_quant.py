"""GGUF quantizations pytest-tee measures: names, llama.cpp file types, and the bytes a weight takes.

Nothing here imports llama_cpp or gguf: settings validate ``--tee-quant`` against this table at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quant:
    name: str  # as llama.cpp and Ollama spell it: "Q4_K_M"
    ftype: int  # llama.cpp's LLAMA_FTYPE_* (what llama_model_quantize is asked for)
    bits_per_weight: float  # nominal, for the preflight estimate before a file exists
    note: str


# LLAMA_FTYPE_* values from llama.h (stable across releases: they name file types stored in GGUF headers).
QUANTS: dict[str, Quant] = {
    quant.name: quant
    for quant in (
        Quant("Q4_K_M", 15, 4.85, "Ollama's default; 4-bit k-quant, some tensors 6-bit"),
        Quant("Q8_0", 7, 8.5, "8-bit, one scale per 32 weights"),
        Quant("F16", 1, 16.0, "IEEE half precision"),
        Quant("BF16", 32, 16.0, "bfloat16"),
        Quant("Q4_0", 2, 4.5, "legacy 4-bit, one scale per 32 weights"),
        Quant("Q5_K_M", 17, 5.69, "5-bit k-quant"),
        Quant("Q6_K", 18, 6.56, "6-bit k-quant"),
    )
}


def canonical_quant(text: str) -> str:
    """``q4_k_m`` → ``Q4_K_M``; ValueError listing the valid names otherwise."""
    name = text.strip().upper()
    if name not in QUANTS:
        raise ValueError(f"{text!r} is not a GGUF quantization pytest-tee knows; valid: {', '.join(QUANTS)}")
    return name
