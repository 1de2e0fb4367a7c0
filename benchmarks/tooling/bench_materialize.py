"""How long it takes to get a model of the R1-Distill-Qwen-1.5B shape, in bfloat16, ready to run on the CPU.

Run on a quiet machine (the file is named explicitly, so pytest collects it despite its name)::

    HF_HUB_OFFLINE=1 pytest benchmarks/tooling/bench_materialize.py --benchmark-only \
        --benchmark-columns=min,median,max,rounds --benchmark-json=materialize.json

- ``test_synthetic_materialize_1_5b_bf16``: pytest-tee's synthetic weights (meta-device build, seeded block
  fill, buffers recomputed), 5 rounds. Target: ≤ 3 s on a 2-vCPU VM.
- ``test_from_config_1_5b_bf16``: ``AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)`` — the
  usual way to build a random model, with transformers' random initialization (~30 s per round on 2 vCPUs),
  so only 2 rounds.

Each round builds a fresh model; the previous one is released in the untimed setup, so a round never pays for
freeing its predecessor and at most one 3.5 GB model is alive at a time. Imports and the transformers model class
are loaded once before timing.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.synthetic import build_empty, synthetic_model

CHECKPOINT = get("r1-distill-qwen-1.5b")
DTYPE = "bfloat16"


class _Holder:
    """Keeps the last built model alive until the next round's setup drops it."""

    model: Any = None

    def release(self) -> tuple[tuple[()], dict[str, Any]]:
        self.model = None
        gc.collect()
        return (), {}


def _record(benchmark: Any, method: str) -> None:
    benchmark.extra_info.update(
        {
            "checkpoint": CHECKPOINT.id,
            "parameters": CHECKPOINT.parameters,
            "dtype": DTYPE,
            "method": method,
            "threads": torch.get_num_threads(),
        }
    )


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    build_empty(CHECKPOINT, DTYPE)  # imports transformers' Qwen2 classes outside the timed region


def test_synthetic_materialize_1_5b_bf16(benchmark: Any) -> None:
    holder = _Holder()

    def build() -> None:
        holder.model = synthetic_model(CHECKPOINT, dtype=DTYPE, device="cpu", seed=0)

    benchmark.pedantic(build, setup=holder.release, rounds=5, iterations=1, warmup_rounds=0)
    _record(benchmark, "pytest-tee synthetic (meta build + seeded block fill)")
    assert sum(p.numel() for p in holder.model.parameters()) == CHECKPOINT.parameters
    holder.release()


def test_from_config_1_5b_bf16(benchmark: Any) -> None:
    from transformers import AutoModelForCausalLM

    holder = _Holder()
    config = CHECKPOINT.make_config()

    def build() -> None:
        holder.model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)

    # Two rounds only: each takes ~30 s on a 2-vCPU VM.
    benchmark.pedantic(build, setup=holder.release, rounds=2, iterations=1, warmup_rounds=0)
    _record(benchmark, "transformers AutoModelForCausalLM.from_config (random init)")
    assert sum(p.numel() for p in holder.model.parameters()) == CHECKPOINT.parameters
    holder.release()
