"""Our support assistant's workload on the CPU, outside or inside a TDX trust domain.

Run it like the shipped suite: ``pytest docs/examples/test_my_benchmark.py --benchmark-autosave``.
"""

import pytest


@pytest.mark.tee_env("cpu", "tdx")  # CPU only: no GPU instance is generated on a GPU host
@pytest.mark.tee_requires(min_memory_gb=4)  # skipped, with the reason, on smaller machines
@pytest.mark.parametrize("prompt_tokens", [96, 384], ids=["question", "with-context"])
def test_support_answer(tokens_per_second, prompt_tokens):
    result = tokens_per_second(prompt_tokens=prompt_tokens, new_tokens=24, batch=1)

    assert result.workload["prompt_tokens"] == prompt_tokens
    assert result["decode_tps"].median > 0
