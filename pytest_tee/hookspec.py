"""Hooks that ``conftest.py`` files and plugins implement to change what pytest-tee does.

``pytest_tee_generate_*`` hooks replace a step: the first implementation returning something other than ``None``
wins. ``pytest_tee_update_*`` hooks add to a step: every implementation is called, in turn, on the same object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_tee.baseline.gate import Verdict
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.environment.record import Environment, ExecutionEnv


@pytest.hookspec(firstresult=True)
def pytest_tee_generate_environment(config: pytest.Config, sysroot: str) -> Environment | None:
    """Replace environment detection: return the ``Environment`` this session runs in.

    For a platform whose signals pytest-tee does not know, or to label a machine by site policy. A claim made
    with ``--tee`` is still checked against the evidence of the returned record.

    .. code-block:: python

        # conftest.py
        from pytest_tee import Environment, Evidence, detect

        def pytest_tee_generate_environment(config, sysroot):
            env = detect(sysroot)
            if env.tee == "none" and open("/etc/site-role").read().strip() == "td-runner":
                env.evidence.append(Evidence("site role", "/etc/site-role", "td-runner", "tdx"))
                env.tee = "tdx"
            return env
    """


def pytest_tee_update_environment(config: pytest.Config, environment: Environment) -> None:
    """Add facts to the detected environment (they are stored with every result).

    Change ``environment.host`` or ``environment.devices`` in place. Facts under ``host["site"]`` are recorded
    but do not enter the environment fingerprint.

    .. code-block:: python

        # conftest.py
        def pytest_tee_update_environment(config, environment):
            environment.host.setdefault("site", {})["td_vcpu_pinning"] = "1:1, node 0"
    """


@pytest.hookspec(firstresult=True)
def pytest_tee_generate_model(
    config: pytest.Config, checkpoint: Checkpoint, execution_env: ExecutionEnv, dtype: str, weights: str
) -> LoadedModel | None:
    """Replace model loading: return a ``LoadedModel`` for this checkpoint on this execution environment.

    Asked for test instances of the transformers engine (``tee_engine == "transformers"``); the built-in
    llama.cpp engine loads its GGUF itself (``--tee-engine=llama.cpp``, see docs/engines.md).
    ``LoadedModel.model`` needs only a transformers-style ``generate(input_ids=…, attention_mask=…,
    max_new_tokens=N, min_new_tokens=N, do_sample=False, num_beams=1, eos_token_id=None, streamer=…)`` that calls
    ``streamer.put`` once with the prompt and once per generated step, then ``streamer.end()``. That is enough to
    measure llama.cpp or an OpenAI-compatible server with the same fixtures and gate.

    .. code-block:: python

        # conftest.py
        from pytest_tee import LoadedModel

        def pytest_tee_generate_model(config, checkpoint, execution_env, dtype, weights):
            if checkpoint.id == "r1-distill-qwen-1.5b" and config.getoption("--llama-cpp", False):
                return LoadedModel(checkpoint=checkpoint, model=LlamaCppAdapter("/models/r1-1.5b-q8.gguf"),
                                   tokenizer=None, weights="real", dtype="q8_0", device="cpu",
                                   placement={"strategy": "llama.cpp"})
            return None  # everything else: the default transformers loader
    """


@pytest.hookspec(firstresult=True)
def pytest_tee_generate_prompts(config: pytest.Config, checkpoint: Checkpoint) -> list[str] | None:
    """Replace the built-in prompt texts (used when a tokenizer is on disk).

    Prompts stay confidential: only their SHA-256 and token count are recorded, never the text.

    .. code-block:: python

        # conftest.py
        def pytest_tee_generate_prompts(config, checkpoint):
            return [open("prompts/soc-design.txt").read()]
    """


def pytest_tee_update_result(config: pytest.Config, item: pytest.Item, result: dict[str, Any]) -> None:
    """Add fields to one stored measurement (``extra_info["tee"]`` of its benchmark) before it is saved.

    .. code-block:: python

        # conftest.py
        import os

        def pytest_tee_update_result(config, item, result):
            result["runner"] = os.environ.get("RUNNER_NAME", "local")
    """


@pytest.hookspec(firstresult=True)
def pytest_tee_generate_verdict(
    config: pytest.Config,
    benchmark: str,
    metric: str,
    base: list[float],
    head: list[float],
    threshold_pct: float,
    higher_is_better: bool,
) -> Verdict | None:
    """Replace the gate's decision for one benchmark and metric, in a pytest session with ``--tee-compare``.

    ``base`` and ``head`` are the per-round samples. Return ``None`` to keep the built-in decision. The offline
    commands (``pytest-tee compare``, ``pytest-tee ab``) run outside pytest and always use the built-in decision.

    .. code-block:: python

        # conftest.py
        import statistics
        from pytest_tee import Verdict

        def pytest_tee_generate_verdict(config, benchmark, metric, base, head, threshold_pct, higher_is_better):
            if metric != "decode_tps":
                return None
            ratio = statistics.median(head) / statistics.median(base)
            outcome = "regressed" if ratio < 1 - threshold_pct / 100 else "unchanged"
            return Verdict(benchmark, metric, statistics.median(base), statistics.median(head), ratio,
                           (ratio, ratio), outcome)
    """
