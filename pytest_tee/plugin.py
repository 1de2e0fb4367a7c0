"""pytest wiring only: options → Settings, environment on first use, markers, fixtures, skips, hooks, the gate.

A good neighbour: every name pytest-tee registers is its own (``tee_*`` fixtures and markers, ``deepseek_*``,
``tokens_per_second``), and a session that uses none of them and sets no pytest-tee option detects nothing, prints
nothing and adds nothing to pytest-benchmark's files.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_tee import hookspec, marks
from pytest_tee.session_state import TeeSession, load_model_for, prompt_maker, start_session
from pytest_tee.settings import Settings, add_options, resolve

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.environment.record import Environment, ExecutionEnv
    from pytest_tee.measure.fixture import MeasureContext, TokensPerSecond
    from pytest_tee.measure.load_fixture import LoadBenchmark
    from pytest_tee.measure.throughput import ThroughputResult

SESSION = pytest.StashKey[TeeSession]()
SETTINGS = pytest.StashKey[Settings]()
MARKER_ERROR = pytest.StashKey[str]()
WORKER_INPUT_KEY = "pytest_tee_environment"  # an xdist controller's environment record, for its workers

# The fixtures this module defines: a test that requests one (directly or through its own fixtures) uses pytest-tee.
FIXTURES = frozenset(
    {
        "tee_environment",
        "tee_bandwidth",
        "tee_execution_env",
        "tee_engine",
        "tee_quant",
        "tee_load",
        "deepseek_checkpoint",
        "deepseek_model",
        "tokens_per_second",
    }
)


def tee_session(config: pytest.Config) -> TeeSession:
    return config.stash[SESSION]


# ----------------------------------------------------------------------------------------------- start-up


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


@pytest.hookimpl(trylast=True)
def pytest_tee_generate_environment(config: pytest.Config, sysroot: str) -> Any:
    from pytest_tee.environment import detect

    return detect(sysroot, claim=config.stash[SETTINGS].tee)


def pytest_configure(config: pytest.Config) -> None:
    for line in marks.MARKERS:
        config.addinivalue_line("markers", line)
    settings = config.stash[SETTINGS] = resolve(config)
    handed_over = (getattr(config, "workerinput", None) or {}).get(WORKER_INPUT_KEY)
    config.stash[SESSION] = start_session(config, settings, handed_over=handed_over)
    if config.pluginmanager.hasplugin("benchmark"):
        from pytest_tee.benchmark_hooks import BenchmarkHooks

        config.pluginmanager.register(BenchmarkHooks(), "pytest-tee-benchmark-hooks")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the environment to each worker, so that workers do not detect again."""
    session = tee_session(node.config)
    if session.detected:
        import json

        node.workerinput[WORKER_INPUT_KEY] = json.dumps(session.environment.to_dict(), default=str)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The environment lines, when a pytest-tee option made this session detect at start-up."""
    session = tee_session(config)
    return _header_lines(session) if session.detected else []


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """The environment lines after collection, when only the collected tests showed that pytest-tee is used."""
    session = tee_session(config)
    if not session.detected or session.header_shown:
        return []
    if config.get_verbosity() < 0 or config.getoption("no_header", False):
        return []  # where pytest prints no header (-q, --no-header), neither does this
    return _header_lines(session)


def _header_lines(session: TeeSession) -> list[str]:
    from pytest_tee.environment.detection import header_line

    session.header_shown = True
    lines = [header_line(session.environment)]
    lines.extend(f"tee warning: {warning}" for warning in session.environment.warnings)
    if session.posture:
        from pytest_tee.attestation.posture import format_note

        lines.extend(f"tee posture: {format_note(note)}" for note in session.posture)
    if session.baseline is not None:
        lines.append(f"tee gate: {session.baseline_line()}")
    return lines


# ----------------------------------------------------------------------------------------------- collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = tee_session(metafunc.config)
    if "tee_execution_env" in metafunc.fixturenames:
        _parametrize_execution_env(metafunc, session)
    if "deepseek_checkpoint" in metafunc.fixturenames:
        from pytest_tee.checkpoints.catalogue import get

        checkpoints = [get(ident) for ident in session.settings.models]
        metafunc.parametrize("deepseek_checkpoint", checkpoints, ids=[c.id for c in checkpoints])
    if "tee_engine" in metafunc.fixturenames:
        _parametrize_engine(metafunc, session)


def _parametrize_engine(metafunc: pytest.Metafunc, session: TeeSession) -> None:
    """One test instance per engine (× quantization for GGUF engines), like devices.

    With a single variant nothing is parametrized (the fixtures return it), so node ids — and the baselines stored
    under them — stay as they were before engines were a dimension.
    """
    variants = engine_variants(session.settings)
    with_quant = "tee_quant" in metafunc.fixturenames
    if not with_quant:
        variants = list(dict.fromkeys((engine, None) for engine, _ in variants))
    if len(variants) < 2:
        return
    ids = [engine if quant is None else f"{engine}-{quant}" for engine, quant in variants]
    if with_quant:
        metafunc.parametrize(("tee_engine", "tee_quant"), variants, ids=ids, scope="session")
    else:
        metafunc.parametrize("tee_engine", [engine for engine, _ in variants], ids=ids, scope="session")


def engine_variants(settings: Settings) -> list[tuple[str, str | None]]:
    """(engine, quantization) pairs to measure: transformers once (its dtype is --tee-dtype), GGUF engines per quant."""
    variants: list[tuple[str, str | None]] = []
    for engine in settings.engine:
        if engine == "llama.cpp":
            variants.extend((engine, quant) for quant in settings.quant)
        else:
            variants.append((engine, None))
    return variants


def _parametrize_execution_env(metafunc: pytest.Metafunc, session: TeeSession) -> None:
    marker = metafunc.definition.get_closest_marker("tee_env")
    try:
        wanted = marks.validate_tee_env(marker.args) if marker else None
    except marks.MarkerError as exc:
        pytest.fail(f"{metafunc.definition.nodeid}: {exc}", pytrace=False)
    envs = marks.select_envs(session.execution_envs, wanted)
    if envs:
        metafunc.parametrize("tee_execution_env", envs, ids=[env.name for env in envs])
        return
    have = ", ".join(env.name for env in session.execution_envs) or "none"
    reason = f"no execution environment here matches {', '.join(wanted or ())} (this host offers: {have})"
    wanted_devices = {"cuda" if name.endswith("cuda") else "cpu" for name in wanted or ()} or {"cpu", "cuda"}
    reason += "".join(f"; {dev}: {why}" for dev, why in session.unavailable_devices.items() if dev in wanted_devices)
    metafunc.parametrize("tee_execution_env", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["none"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(_uses_tee(item) for item in items):
        return  # nothing here uses pytest-tee: no detection, no header, the items as they were
    session = tee_session(config)
    session.detection()
    for item in items:
        _apply_requires(item, session)
    session.measuring_items = sum(
        bool({"tokens_per_second", "tee_load"} & set(getattr(item, "fixturenames", ()))) for item in items
    )

    # Tests sharing a checkpoint × environment × engine run together, so only one model is held and each loads once.
    def model_key(item: pytest.Item) -> tuple[int, str, str, str, str]:
        params = getattr(getattr(item, "callspec", None), "params", {})
        checkpoint = params.get("deepseek_checkpoint")
        env = params.get("tee_execution_env")
        if checkpoint is None:
            return (0, "", "", "", "")
        engine, quant = str(params.get("tee_engine", "")), str(params.get("tee_quant", ""))
        return (1, checkpoint.id, getattr(env, "name", ""), engine, quant)

    items.sort(key=model_key)


def _uses_tee(item: pytest.Item) -> bool:
    if not FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
        return True
    return any(item.get_closest_marker(name) is not None for name in marks.MARKER_NAMES)


def _apply_requires(item: pytest.Item, session: TeeSession) -> None:
    """Decided at collection so that the skip is reported at the test, with what is missing."""
    marker = item.get_closest_marker("tee_requires")
    if marker is None:
        return
    env = getattr(getattr(item, "callspec", None), "params", {}).get("tee_execution_env")
    try:
        if marker.args:
            raise marks.MarkerError(
                "@pytest.mark.tee_requires takes keyword arguments only, e.g. tee_requires(cuda=True)"
            )
        missing = marks.unmet_requirements(marker.kwargs, session.environment, env)
    except marks.MarkerError as exc:
        item.stash[MARKER_ERROR] = str(exc)
        return
    if missing:
        item.add_marker(pytest.mark.skip(reason="requires " + "; ".join(missing)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    error = item.stash.get(MARKER_ERROR, None)
    if error:
        pytest.fail(error, pytrace=False)


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tee_environment(pytestconfig: pytest.Config) -> Environment:
    """The detected Environment: TEE kind and evidence, CPU, memory, GPUs, NVIDIA CC mode."""
    return tee_session(pytestconfig).environment


@pytest.fixture(scope="session")
def tee_bandwidth(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Sustained memory read bandwidth (GB/s), measured once and recorded with the run for roofline reports."""
    state = tee_session(pytestconfig)
    if state.bandwidth is None:
        from pytest_tee.environment.bandwidth import measure_read_bandwidth

        state.bandwidth = measure_read_bandwidth()
    return state.bandwidth


@pytest.fixture
def tee_execution_env(request: pytest.FixtureRequest) -> ExecutionEnv:
    """One execution environment per test instance (cpu, cuda, tdx, tdx-cuda, …): parametrized at collection."""
    raise pytest.UsageError("tee_execution_env is parametrized by pytest-tee; it cannot be requested indirectly")


@pytest.fixture
def deepseek_checkpoint(request: pytest.FixtureRequest) -> Checkpoint:
    """A Checkpoint from the catalogue, one per --tee-models entry: parametrized at collection."""
    raise pytest.UsageError("deepseek_checkpoint is parametrized by pytest-tee; it cannot be requested indirectly")


@pytest.fixture(scope="session")
def tee_engine(request: pytest.FixtureRequest) -> str:
    """The inference engine of this test instance (``transformers``, ``llama.cpp``, …): one per --tee-engine entry."""
    param = getattr(request, "param", None)
    return str(param) if param is not None else tee_session(request.config).settings.engine[0]


@pytest.fixture(scope="session")
def tee_quant(request: pytest.FixtureRequest, tee_engine: str) -> str | None:
    """The GGUF quantization of this test instance for the llama.cpp engine (one per --tee-quant); None otherwise."""
    param = getattr(request, "param", None)
    if param is not None or tee_engine != "llama.cpp":
        return None if param is None else str(param)
    return tee_session(request.config).settings.quant[0]


@pytest.fixture
def deepseek_model(
    pytestconfig: pytest.Config,
    deepseek_checkpoint: Checkpoint,
    tee_execution_env: ExecutionEnv,
    tee_engine: str,
    tee_quant: str | None,
) -> LoadedModel:
    """The LoadedModel for this checkpoint on this execution environment with this engine (cached; one held)."""
    session = tee_session(pytestconfig)
    return load_model_for(session, pytestconfig, deepseek_checkpoint, tee_execution_env, tee_engine, tee_quant)


@pytest.fixture
def tokens_per_second(
    request: pytest.FixtureRequest,
    deepseek_checkpoint: Checkpoint,
    tee_execution_env: ExecutionEnv,
    tee_engine: str,
    tee_quant: str | None,
) -> TokensPerSecond:
    """tokens_per_second(prompt_tokens=…, new_tokens=…, batch=…, prompt=None, model=None) -> ThroughputResult."""
    from pytest_tee.measure.fixture import TokensPerSecond

    return TokensPerSecond(_measure_context(request, tee_execution_env))


@pytest.fixture
def tee_load(
    request: pytest.FixtureRequest,
    deepseek_checkpoint: Checkpoint,
    tee_execution_env: ExecutionEnv,
    tee_engine: str,
    tee_quant: str | None,
) -> LoadBenchmark:
    """tee_load(concurrency=N | rate=R, requests=M, prompt_tokens=…, new_tokens=…) -> LoadResult (openai engine)."""
    from pytest_tee.measure.load_fixture import LoadBenchmark

    return LoadBenchmark(_measure_context(request, tee_execution_env))


def _measure_context(request: pytest.FixtureRequest, tee_execution_env: ExecutionEnv) -> MeasureContext:
    from pytest_tee.measure.fixture import MeasureContext
    from pytest_tee.measure.rounds import RoundPlan
    from pytest_tee.measure.timing import Workload

    config = request.config
    session = tee_session(config)
    settings = session.settings
    _refuse_xdist(config)
    has_benchmark = config.pluginmanager.hasplugin("benchmark")
    return MeasureContext(
        plan=RoundPlan(
            rounds=settings.rounds,
            warmup=settings.warmup,
            target_ci_pct=settings.target_ci,
            max_rounds=settings.max_rounds,
            max_time_s=settings.max_time,
        ),
        default_workload=Workload(settings.prompt_tokens, settings.new_tokens, settings.batch),
        execution_env=tee_execution_env,
        environment_fingerprint=session.environment.fingerprint,
        host_snapshot=session.host_snapshot(),
        default_model=lambda: request.getfixturevalue("deepseek_model"),
        make_prompt=prompt_maker(config),
        benchmark=(lambda: request.getfixturevalue("benchmark")) if has_benchmark else None,
        threads=settings.threads,
        gate_check=_adaptive_gate(session),
        progress=_progress_writer(config),
        update_result=_result_updater(request),
        on_result=_result_recorder(request, session),
        fullname=request.node.nodeid,
    )


def _adaptive_gate(session: TeeSession) -> Any:
    """With adaptive rounds and a baseline, an inconclusive benchmark keeps sampling until decided or out of budget."""
    settings = session.settings
    baseline = getattr(session.baseline, "run", None)
    if settings.target_ci is None or baseline is None:
        return None
    from pytest_tee.baseline.session_gate import adaptive_gate_check

    family = max(1, session.measuring_items) * len(settings.gate_rules)
    history = getattr(session.baseline, "history", ())
    return lambda fullname: adaptive_gate_check(
        baseline, fullname, settings.gate_rules, first_look=settings.rounds, family_size=family, history=history
    )


def _refuse_xdist(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or getattr(config, "workerinput", None) is not None:
        pytest.fail(
            "pytest-tee does not measure under pytest-xdist: parallel workers share the same cores and memory "
            "bandwidth, so every tokens/s number would be wrong. Run benchmarks with -p no:xdist (or -n 0).",
            pytrace=False,
        )


def _progress_writer(config: pytest.Config) -> Any:
    """Progress past pytest's capture: per round with -v, else a live line on a terminal or a line every ~12 s."""
    from pytest_tee.measure.progress import ProgressWriter

    verbosity = config.get_verbosity()
    if verbosity < 0:
        return None
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return None

    def uncaptured(action: Any) -> Any:
        def run(*arguments: Any) -> Any:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                return action(*arguments)

        return run

    terminal = verbosity < 1 and uncaptured(_is_terminal)()
    mode = "rounds" if verbosity >= 1 else "live" if terminal else "lines"
    return ProgressWriter(
        mode,
        line=uncaptured(reporter.write_line),
        rewrite=uncaptured(lambda text: reporter.rewrite(text, erase=True)),
        start_live=uncaptured(reporter.ensure_newline),
    )


def _is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # replaced or closed stdout: not a terminal
        return False


def _result_updater(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], None]:
    def update(stored: dict[str, Any]) -> None:
        request.config.hook.pytest_tee_update_result(config=request.config, item=request.node, result=stored)

    return update


def _result_recorder(request: pytest.FixtureRequest, session: TeeSession) -> Callable[[ThroughputResult], None]:
    from pytest_tee.saved_runs import BenchmarkEntry

    def record(result: ThroughputResult) -> None:
        assert result.measurement is not None
        for name, summary in result.metrics.items():
            request.node.user_properties.append((f"tee_{name}", round(summary.median, 6)))
        request.node.user_properties.append(("tee_execution_env", result.execution_env))
        nodeid = request.node.nodeid
        session.results.append(BenchmarkEntry(nodeid, nodeid.rsplit("::", 1)[-1], None, result.measurement))

    return record


# ----------------------------------------------------------------------------------------------- the end


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    state = tee_session(session.config)
    if state.settings.bandwidth:
        from pytest_tee.environment.bandwidth import measure_read_bandwidth

        state.bandwidth = measure_read_bandwidth()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if SESSION not in session.config.stash:
        return
    import functools

    state = tee_session(session.config)
    state.release_models()
    config = session.config
    hook = functools.partial(config.hook.pytest_tee_generate_verdict, config=config)
    exit_code = state.judge(hook, test_args=[str(argument) for argument in config.args])
    if session.exitstatus == 0 and exit_code:
        session.exitstatus = exit_code
    state.write_summaries()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line, markup in tee_session(config).summary_lines():
        if line.startswith("= "):
            terminalreporter.write_sep("-", line[2:])
        else:
            terminalreporter.write_line(line, **markup)
