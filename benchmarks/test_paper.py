"""The paper's experiment (arXiv 2502.11347): how fast DeepSeek checkpoints generate, per execution environment.

Run the same suite on a bare host, a GPU host and inside a TD, then combine the saved runs with
``pytest-tee report``. Each test instance is one checkpoint (``--tee-models``) × one execution environment this
host offers (cpu, cuda, tdx, tdx-cuda, …) × one workload shape.
"""

from __future__ import annotations

import pytest

# A chat-sized prompt and a document-sized one; new tokens come from --tee-new-tokens (default 32).
PROMPTS = [pytest.param(32, id="short-prompt"), pytest.param(512, id="long-prompt")]


@pytest.mark.parametrize("prompt_tokens", PROMPTS)
def test_generation(tokens_per_second, prompt_tokens):
    result = tokens_per_second(prompt_tokens=prompt_tokens)
    assert result.rounds >= 1


@pytest.mark.tee_env("cuda", "tdx-cuda", "sev-snp-cuda")
@pytest.mark.parametrize("batch", [8])
def test_batched_generation_on_gpu(tokens_per_second, batch):
    """Batching only pays where compute is plentiful; on a CPU it would just multiply the run time."""
    result = tokens_per_second(prompt_tokens=128, batch=batch)
    assert result.workload["batch"] == batch


def test_memory_read_bandwidth(tee_bandwidth):
    """The roofline's denominator: decode on a CPU is bound by how fast the weights can be read."""
    assert tee_bandwidth["read_gbps"] > 0
