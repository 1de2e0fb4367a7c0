"""One pytest session's pytest-tee state (kept in ``config.stash``) and the work done on it between hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when used: every pytest session loads this module, most never detect
    from pytest_tee.environment.record import Environment, ExecutionEnv
    from pytest_tee.records import HostSnapshot
    from pytest_tee.saved_runs import BenchmarkEntry
    from pytest_tee.settings import Settings


@dataclass
class Detected:
    """What detection gives a session: the environment and what follows from it for collection and the header."""

    environment: Environment
    execution_envs: list[ExecutionEnv]
    unavailable_devices: dict[str, str]
    posture: list[Any] = field(default_factory=list)  # attestation.posture.PostureNote, for header and summary


@dataclass
class TeeSession:
    """pytest-tee's state for one session. Detection runs on first use, so a session that uses nothing of
    pytest-tee (no fixture, marker or option) never detects: installed beside other suites, it costs them nothing.
    """

    settings: Settings
    detector: Callable[[], Detected]
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    results: list[BenchmarkEntry] = field(default_factory=list)
    bandwidth: dict[str, Any] | None = None
    attestation: dict[str, Any] | None = None  # the block bound to this session's saved results
    baseline: Any = None  # baseline.session.BaselineChoice, chosen at start when gating
    gate: Any = None  # baseline.session.GateReport, after the session
    measuring_items: int = 0  # collected tests that use tokens_per_second (the gate's family size)
    header_shown: bool = False  # the environment header lines went out (at start, or after collection)
    _detected: Detected | None = None
    _models: Any = None
    _attestor: Any = None

    # ---------------------------------------------------------------------------------------------------------
    @property
    def detected(self) -> bool:
        return self._detected is not None

    def detection(self) -> Detected:
        if self._detected is None:
            self._detected = self.detector()
        return self._detected

    @property
    def environment(self) -> Environment:
        return self.detection().environment

    @property
    def execution_envs(self) -> list[ExecutionEnv]:
        return self.detection().execution_envs

    @property
    def unavailable_devices(self) -> dict[str, str]:
        return self.detection().unavailable_devices

    @property
    def posture(self) -> list[Any]:
        return self.detection().posture

    # ---------------------------------------------------------------------------------------------------------
    @property
    def models(self) -> Any:
        if self._models is None:
            from pytest_tee.checkpoints.loading import ModelCache

            self._models = ModelCache()
        return self._models

    def attestor(self) -> Any:
        """One attestation per session, however many documents pytest-benchmark writes."""
        if self._attestor is None:
            from pytest_tee.attestation.binding import SessionAttestor

            self._attestor = SessionAttestor(sysroot=str(self.settings.sysroot), cpu_flags=self.cpu_flags)
        return self._attestor

    @property
    def cpu_flags(self) -> list[str]:
        return list(self.environment.facts.cpu_flags)

    def release_models(self) -> None:
        if self._models is not None:
            self._models.clear()

    def host_snapshot(self) -> HostSnapshot:
        """The host facts stored with every result, so one result read alone says where it was measured."""
        return self.environment.facts.snapshot(self.environment.tee)

    def baseline_line(self) -> str:
        """Which stored run this session will be judged against, said up front."""
        run = getattr(self.baseline, "run", None)
        if run is None:
            error = getattr(self.baseline, "error", None)
            return f"no baseline ({error})" if error else "no baseline"
        rules = ", ".join(f"{metric} −{pct:g}%" for metric, pct in self.settings.gate_rules)
        where = run.path if run.path is not None else run.label
        return f"baseline {where} ({run.datetime[:19]}), failing on drops beyond {rules}"

    # --------------------------------------------------------------------------------------------- the end
    def judge(self, hook: Any, test_args: Sequence[str] = ()) -> int:
        """Run the gate over this session's results (when gating); the exit code it asks for (0 = no objection).

        ``test_args``: the session's test paths, for the command an inconclusive verdict suggests.
        """
        if not self.settings.gating:
            return 0
        from pytest_tee.baseline.session_gate import run_gate
        from pytest_tee.saved_runs import run_from_document

        head = run_from_document(self.results_document(), label="this session") if self.results else None
        self.gate = run_gate(head, self.settings, self.baseline, decide_hook=hook, test_args=test_args)
        return int(self.gate.exit_code)

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        """What the terminal summary shows after pytest's own sections: (line, markup) pairs."""
        lines: list[tuple[str, dict[str, bool]]] = []
        if self.results:
            from pytest_tee.measure.session_table import session_table

            lines.append(("=" + " pytest-tee: tokens/s", {}))
            lines.extend((line, {}) for line in session_table(self.results))
        if self.bandwidth is not None:
            lines.append((self._bandwidth_line(), {}))
        if self.gate is not None:
            lines.append(("=" + " pytest-tee: regression gate", {}))
            lines.extend((line, {}) for line in self.gate.text.rstrip("\n").splitlines())
            if self.gate.exit_code:
                lines.append((f"pytest-tee: failing the session (exit code {self.gate.exit_code})", {"red": True}))
        lines.extend((line, {"yellow": True}) for line in self._attestation_lines())
        return lines

    def summary_markdown(self) -> str:
        """The same as markdown, for --tee-summary and $GITHUB_STEP_SUMMARY (no prompt text: there is none here)."""
        from pytest_tee.measure.session_table import session_markdown

        parts = [
            "## pytest-tee",
            "",
            f"`{self.environment.tee}` on {self.environment.platform}: " + "; ".join(self.environment_summary()),
            "",
        ]
        if self.results:
            parts += [session_markdown(self.results), ""]
        if self.bandwidth is not None:
            parts += [self._bandwidth_line(), ""]
        if self.gate is not None:
            parts += [self.gate.markdown, ""]
        parts += [f"- {line.strip()}" for line in self._attestation_lines()]
        return "\n".join(parts).rstrip() + "\n"

    def environment_summary(self) -> list[str]:
        notes = list(self.environment.warnings)
        if self.posture:
            from pytest_tee.attestation.posture import format_note

            notes += [format_note(note) for note in self.posture]
        return [f"fingerprint {self.environment.fingerprint}", *notes]

    def _bandwidth_line(self) -> str:
        assert self.bandwidth is not None
        return (
            f"memory read bandwidth: {self.bandwidth['read_gbps']} GB/s median "
            f"({self.bandwidth['threads']} threads; recorded with the run for `pytest-tee report`)"
        )

    def _attestation_lines(self) -> list[str]:
        if not self.settings.attest:
            return []
        if self.attestation is None:
            return [
                "pytest-tee: --tee-attest collected nothing: no results were saved "
                "(use --benchmark-autosave, --benchmark-save=NAME or --benchmark-json=PATH)"
            ]
        from pytest_tee.attestation.binding import describe_attestation

        return describe_attestation(self.attestation)

    def write_summaries(self) -> None:
        """--tee-summary (replaced atomically) and $GITHUB_STEP_SUMMARY (appended, as GitHub expects)."""
        if not (self.results or self.gate is not None):
            return
        import os

        from pytest_tee.files import append_text, write_atomic

        markdown = self.summary_markdown()
        if self.settings.summary is not None:
            write_atomic(self.settings.summary, markdown)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            append_text(step_summary, markdown)

    def results_document(self) -> dict[str, Any]:
        """This session's results in the saved-run layout, for the gate (nothing is written)."""
        return {
            "machine_info": {"tee": self.environment.identity()},
            "pytest_tee": {"environment": self.environment.to_dict(), "session_started": self.started},
            "commit_info": {},
            "datetime": self.started,
            "benchmarks": [entry.to_json() for entry in self.results],
        }


def start_session(config: pytest.Config, settings: Settings, *, handed_over: str | None = None) -> TeeSession:
    """The session's state; detection (through the hooks) waits for first use unless a pytest-tee option was set.

    With an option set the session surely uses pytest-tee, so the --tee claim is checked now (a usage error before
    any test runs) and a gating session chooses its baseline now. ``handed_over``: the environment record an
    xdist controller passed to this worker (JSON), used instead of detecting again.
    """
    if handed_over is not None:
        session = TeeSession(settings=settings, detector=lambda: _take_over(handed_over, settings))
    else:
        session = TeeSession(settings=settings, detector=lambda: detect_for(config, settings))
    _check_engines_installed(settings)
    if not settings.configured:
        return session
    environment = session.environment
    if settings.gating:
        from pytest_tee.baseline.session_gate import choose_baseline

        # Now, before pytest-benchmark saves this session's own run (else "latest" would be this very session).
        session.baseline = choose_baseline(
            settings,
            storage_uri=str(config.getoption("benchmark_storage", None) or "file://./.benchmarks"),
            fingerprint=environment.fingerprint,
        )
    return session


def _check_engines_installed(settings: Settings) -> None:
    """An engine the user asked for by name must be importable: say so before any test runs (exit 4).

    An engine that only a suite's default names (the shipped suite measures llama.cpp too) is skipped at its tests
    with the same reason instead, so the rest of the suite still runs.
    """
    from pytest_tee.settings import explicitly_set

    if not explicitly_set(settings, "engine"):
        return
    from pytest_tee.engines import missing_library

    for engine in settings.engine:
        problem = missing_library(engine)
        if problem:
            raise pytest.UsageError(f"pytest-tee: {settings.sources['engine']}: {problem}")


def detect_for(config: pytest.Config, settings: Settings) -> Detected:
    """Detect (through the hooks), check the --tee claim, and derive what collection and the header need."""
    from pytest_tee.environment import fingerprint_of

    environment = config.hook.pytest_tee_generate_environment(config=config, sysroot=str(settings.sysroot))
    config.hook.pytest_tee_update_environment(config=config, environment=environment)
    environment.claim = settings.tee
    environment.fingerprint = fingerprint_of(environment.fingerprint_fields())  # the hooks may have changed facts
    detected = _derive(environment, settings)
    if environment.tee == "tdx":
        from pytest_tee.attestation.binding import early_posture

        detected.posture = early_posture(settings.sysroot, cpu_flags=environment.host.get("cpu", {}).get("flags", ()))
    return detected


def _derive(environment: Environment, settings: Settings) -> Detected:
    from pytest_tee.environment import execution_envs
    from pytest_tee.environment.detection import check_claim, unavailable_devices

    problem = check_claim(environment, settings.tee)
    if problem:
        raise pytest.UsageError(problem)
    return Detected(
        environment=environment,
        execution_envs=execution_envs(environment, settings.device),
        unavailable_devices=unavailable_devices(environment, settings.device),
    )


def _take_over(record: str, settings: Settings) -> Detected:
    """An xdist worker's environment: the controller's record (its hooks already ran), nothing probed again."""
    import json

    from pytest_tee.environment.record import Environment

    return _derive(Environment.from_dict(json.loads(record)), settings)


def load_model_for(
    session: TeeSession,
    config: pytest.Config,
    checkpoint: Any,
    execution_env: ExecutionEnv,
    engine_name: str = "transformers",
    quant: str | None = None,
) -> Any:
    """The model for one checkpoint × execution environment × engine, via the hook or the engine; cached."""
    from pytest_tee.checkpoints.dtype import choose_dtype
    from pytest_tee.checkpoints.loading import ModelUnavailable
    from pytest_tee.engines import EngineError, EngineUnavailable, LoadRequest, get_engine

    settings = session.settings
    if engine_name == "transformers":
        cpu_flags = session.environment.facts.cpu_flags
        precision, reason = choose_dtype(
            settings.dtype, execution_env.device, cpu_flags, cuda_supports_bf16=_cuda_bf16(session, execution_env)
        )
    else:
        precision, reason = quant or settings.quant[0], "--tee-quant"
    request = LoadRequest(
        execution_env=execution_env.name,
        device=execution_env.torch_device,
        precision=precision,
        precision_reason=reason,
        weights_mode=settings.weights,
        model_paths=settings.model_paths,
        workload=(settings.prompt_tokens, settings.new_tokens, settings.batch),
        threads=settings.threads,
        options=engine_options(settings, engine_name),
    )
    try:
        engine = get_engine(engine_name)
        problem = engine.unavailable_reason(execution_env.name, execution_env.device)
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    if problem:
        pytest.skip(problem)
    key = (checkpoint.id, execution_env.name, *engine.cache_key(request))

    def build() -> Any:
        if engine_name == "transformers":  # the hook predates engines: it builds transformers models
            custom = config.hook.pytest_tee_generate_model(
                config=config,
                checkpoint=checkpoint,
                execution_env=execution_env,
                dtype=precision,
                weights=settings.weights,
            )
            if custom is not None:
                return custom
        return engine.load(checkpoint, request)

    try:
        return session.models.get(key, build)
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    except EngineError as exc:
        pytest.fail(str(exc), pytrace=False)


def engine_options(settings: Settings, engine_name: str) -> dict[str, Any]:
    """The engine-specific settings an engine reads from ``LoadRequest.options``."""
    if engine_name != "openai":
        return {}
    return {
        "endpoint": settings.endpoint,
        "served_model": settings.served_model,
        "server_kind": settings.server_kind,
        "api_key_env": settings.api_key_env,
        "request_timeout": settings.request_timeout,
        "request_extra": settings.request_extra,
    }


def _cuda_bf16(session: TeeSession, execution_env: ExecutionEnv) -> bool:
    """bfloat16 runs natively from compute capability 8.0 (Ampere) on; older GPUs get float16 under auto."""
    for device in session.environment.devices:
        if device.get("kind") == "cuda" and device.get("index") == (execution_env.device_index or 0):
            capability = str(device.get("compute_capability") or "")
            major = capability.split(".")[0]
            return not major.isdigit() or int(major) >= 8
    return True


def server_prompt(server: Any, workload: Any, text: str | None) -> Any:
    """A prompt the server confirms to be ``workload.prompt_tokens`` long (ValueError naming the problem)."""
    from pytest_tee.serving.server import ServerError

    try:
        return server.make_prompt(workload.prompt_tokens, workload.batch, text)
    except ServerError as exc:
        raise ValueError(f"building a prompt on the server: {exc}") from None


def prompt_maker(config: pytest.Config) -> Callable[..., Any]:
    """make_prompt(loaded, workload, text) with the prompt texts a conftest may provide."""
    from pytest_tee.checkpoints.prompts import make_prompt
    from pytest_tee.confidential import ConfidentialText

    def make(loaded: Any, workload: Any, text: str | None) -> Any:
        if getattr(loaded, "engine", None) == "openai":  # the server counts the prompt's tokens itself
            return server_prompt(loaded.model, workload, text)
        checkpoint = getattr(loaded, "checkpoint", None)
        tokenizer = getattr(loaded, "tokenizer", None)
        texts = None
        if checkpoint is not None and tokenizer is not None and text is None:
            provided = config.hook.pytest_tee_generate_prompts(config=config, checkpoint=checkpoint)
            texts = [ConfidentialText(item) for item in provided] if provided is not None else None
        vocab_size = int(getattr(loaded, "vocab_size", None) or loaded.model.config.vocab_size)
        token_range = getattr(checkpoint, "text_token_range", None)
        if token_range is not None and token_range[1] > vocab_size:  # a stand-in model with its own vocabulary
            token_range = None
        return make_prompt(
            vocab_size=vocab_size,
            prompt_tokens=workload.prompt_tokens,
            batch=workload.batch,
            tokenizer=tokenizer,
            texts=texts,
            prompt=text,
            token_range=token_range,
        )

    return make
