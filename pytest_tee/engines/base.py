"""The engine interface: what every inference engine behind ``tokens_per_second`` provides.

An engine is one module in ``pytest_tee/engines/`` holding one class with three duties, and nothing else:

``load(checkpoint, request) -> LoadedModel``
    Make the checkpoint ready to generate in one execution environment: find real weights or build synthetic
    ones, check that they fit (preflight), load them. ``LoadedModel.engine`` names the engine, ``model`` holds
    the engine's own object (a transformers model, a ``llama_cpp.Llama``, an HTTP client bound to a server),
    ``precision`` says how the weights are stored (``bfloat16``, ``Q4_K_M``, …). Raise
    :class:`~pytest_tee.checkpoints.weights.ModelUnavailable` when this environment cannot hold or serve the model
    (the test is skipped with the message) and :class:`EngineError` for bad input the user must fix (named).

``rounds(loaded, prompt, workload) -> TimedRound``
    An object that runs one measured round at a time in three steps, so that only the generation itself is
    timed (pytest-benchmark's ``pedantic`` calls them as setup / target / teardown):

    - ``prepare()``  untimed: collect garbage, reset memory peaks, arm per-token stamping;
    - ``timed()``    the timed region: exactly ``workload.new_tokens`` new tokens per sequence from the fixed
      prompt token ids, end-of-sequence ignored, greedy, stamping the clock when each new token is available to
      the caller — and nothing else (no verification, no decoding of text);
    - ``take()``     untimed: verify that exactly N tokens came out (else raise ``RoundError``) and return a
      :class:`~pytest_tee.measure.timing.RoundRecord` (start, per-token stamps, end, memory peaks).

    For an HTTP streaming engine a round is one request asking for exactly N tokens (``max_tokens = N``,
    ``ignore_eos`` or ``min_tokens = N``, ``temperature = 0``, prompt as token ids) whose stamps are read when
    each streamed chunk arrives, the count checked against the chunks and the server's ``usage`` block.

``describe(loaded) -> records.EngineInfo``
    What decides this engine's speed, as plain data: its build (library versions, compile-time features such as
    llama.cpp's ``system_info``, a server's version and model facts), its settings (threads, context and batch
    sizes, …) and which of those belong in the comparison key. Stored as the ``engine`` block of every result;
    two results whose keys differ are never compared as equals.

Engines are looked up by name (``pytest_tee.engines.get_engine``); importing this module imports no engine
library, so the plugin stays cheap for sessions that never measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.checkpoints.prompts import Prompt
    from pytest_tee.measure.timing import RoundRecord, Workload
    from pytest_tee.records import EngineInfo


class EngineError(ValueError):
    """Bad input for an engine (a corrupt weights file, a mismatched architecture): the message names it."""


class EngineUnavailable(RuntimeError):
    """The engine's library is not installed (or cannot serve this environment); the message says how to fix it."""


@dataclass(frozen=True)
class LoadRequest:
    """Everything an engine needs to load one checkpoint for one execution environment (from Settings)."""

    execution_env: str  # "cpu", "cuda", "tdx", …
    device: str  # torch-style device of that environment: "cpu", "cuda:0"
    precision: str  # transformers dtype (maybe "auto") or GGUF quantization, as the engine understands it
    weights_mode: str = "auto"  # "auto" | "real" | "synthetic"
    model_paths: Mapping[str, Path] = field(default_factory=dict)  # checkpoint id -> local weights
    workload: tuple[int, int, int] = (128, 32, 1)  # prompt tokens, new tokens, batch: for preflight/context size
    threads: int | None = None  # --tee-threads
    precision_reason: str = ""
    seed: int = 0
    available_bytes: int | None = None  # replaces the memory the device reports (tests, dry runs)
    options: Mapping[str, Any] = field(default_factory=dict)  # engine-specific settings (e.g. an endpoint URL)


class TimedRound(Protocol):
    """One model × prompt × workload, measured a round at a time (see the module docstring)."""

    workload: Workload
    prompt_tokens: int

    def prepare(self) -> None: ...

    def timed(self) -> None: ...

    def take(self) -> RoundRecord: ...


class Engine(Protocol):
    """One inference engine (see the module docstring)."""

    name: str

    def load(self, checkpoint: Checkpoint, request: LoadRequest) -> LoadedModel: ...

    def rounds(self, loaded: LoadedModel, prompt: Prompt, workload: Workload, threads: int | None) -> TimedRound: ...

    def describe(self, loaded: LoadedModel) -> EngineInfo: ...

    def cache_key(self, request: LoadRequest) -> tuple[Any, ...]:
        """What distinguishes one loaded model from another for this engine (one model is held at a time)."""
        ...

    def unavailable_reason(self, execution_env: str, device: str) -> str | None:
        """Why this engine cannot run in that execution environment here (None when it can)."""
        ...


def run_once(round_: TimedRound) -> RoundRecord:
    """One round outside pytest-benchmark (tests, tools)."""
    round_.prepare()
    round_.timed()
    return round_.take()
