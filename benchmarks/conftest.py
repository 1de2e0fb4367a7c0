"""The shipped benchmark suite. ``pytest benchmarks/`` runs the paper's experiment; the benchmarks of pytest-tee's
own machinery (synthetic weights, measurement fidelity) live in ``benchmarks/tooling`` and run only when that
folder is named: ``pytest benchmarks/tooling``.

The suite measures both engines unless told otherwise: transformers in bfloat16 (the precision DeepSeek publishes
its checkpoints in) and llama.cpp with Q4_K_M GGUF weights, the paper's likely stack (Ollama). bfloat16 is the
suite's default even on CPUs without native bf16 matmuls, where the plugin's ``--tee-dtype=auto`` would pick
float32: decode, the paper's metric, reads half the bytes and ran 1.95x float32's rate on this project's AVX2 VM
(5.2 vs 2.7 tok/s for the 1.5B), while prefill ran 3-7x slower. ``--tee-engine``/``--tee-quant``/``--tee-dtype``
(or their ini keys and ``PYTEST_TEE_*`` variables) override this; without llama-cpp-python its tests are skipped
with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

TOOLING = Path(__file__).parent / "tooling"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from pytest_tee.settings import set_suite_default

    set_suite_default(config, "engine", "transformers,llama.cpp", "benchmarks/conftest.py")
    set_suite_default(config, "dtype", "bfloat16", "benchmarks/conftest.py")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if TOOLING not in (collection_path, *collection_path.parents):
        return None
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    wanted = any(p == TOOLING or TOOLING in p.parents for p in named)
    return None if wanted else True
