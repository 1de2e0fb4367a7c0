"""``pytest-tee ab --base REV [-- PYTEST-ARGS]``: same-runner A/B of a base revision against the working tree.

The base revision is checked out in a temporary ``git worktree`` (``--setup`` runs in each checkout first; each
side imports its own code, ``ab_imports``); base and head pytest sessions then run in blocks of four — base, head,
head, base in odd blocks, head, base, base, head in even ones — so that drift in the machine (heat, clocks,
neighbours) falls on both sides alike and cancels within each block. Sessions, not rounds, are the unit: each
session's level is the median of its rounds, and ``sessions.decide_blocks`` judges the per-block differences of
mean log levels with a t-test over blocks. After every block from the third the blocks so far are judged as a
look of a group-sequential design (``sequential``): once every verdict is decided the run stops, with the false
alarms still ≤ α however often it looked. The worktree is removed afterwards, also on Ctrl-C or an error.

Why at most 18 blocks by default: on a shared 2-vCPU runner session levels vary by ~9 % (log SD 0.09) from session
to session; 18 blocks (72 sessions) catch a 10 % drop ≥ 95 % of the time with ≤ 1 % false alarms, and with the
sequential looks a 10 % drop is decided after ~11 blocks, a 40 % one after ~6
(``benchmarks/tooling/sequential_simulation.py``). An inconclusive verdict says how many blocks would likely
decide it.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_tee.baseline.compare_command import add_gate_arguments, emit, rules_of
from pytest_tee.errors import InputError
from pytest_tee.records import Verdict

BLOCK_ORDERS = (("base", "head", "head", "base"), ("head", "base", "base", "head"))
SESSIONS_PER_BLOCK = 4
DEFAULT_BLOCKS = 18
_JUDGING_VARIABLES = frozenset(
    {
        "PYTEST_TEE_COMPARE",
        "PYTEST_TEE_FAIL_DROP",
        "PYTEST_TEE_FAIL_INCONCLUSIVE",
        "PYTEST_TEE_VERDICTS",
        "PYTEST_TEE_SUMMARY",
        "GITHUB_STEP_SUMMARY",
    }
)
LOG_TAIL_LINES = 25
# Each session: pytest, then out without the interpreter's shutdown. Tearing down torch and transformers' modules
# took 3–3.6 s a session on the shared 2-vCPU VM (benchmarks/tooling/session_overhead.py); pytest has written and
# closed its files by the time pytest.main returns, so only atexit handlers are skipped, and sessions run
# only the measured benchmarks.
SESSION_BOOTSTRAP = """
import os, sys
import pytest
sys.argv[0] = "pytest"
code = pytest.main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
os._exit(int(code))
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, metavar="REV", help="the base revision (branch, tag or commit)")
    parser.add_argument(
        "--blocks",
        type=_positive_int,
        default=DEFAULT_BLOCKS,
        metavar="N",
        help=f"blocks of 4 sessions: base head head base, then head base base head, … (default {DEFAULT_BLOCKS}; "
        "at least 3 to judge; a quiet runner needs fewer, an inconclusive verdict says how many more)",
    )
    parser.add_argument(
        "--setup",
        metavar="CMD",
        default=None,
        help="a shell command run once in each checkout (base, then head) before the first session, e.g. to build "
        "an extension or install the project into a per-side environment",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        default=None,
        help="the interpreter for each side's sessions; a relative path is taken inside each checkout (e.g. "
        ".venv-ab/bin/python made by --setup). Default: the interpreter running pytest-tee",
    )
    add_gate_arguments(parser)
    parser.add_argument("pytest_args", nargs="*", metavar="PYTEST-ARGS", help="after --: arguments for each pytest run")


@dataclass(frozen=True)
class Side:
    name: str  # "base" or "head"
    label: str  # e.g. "base main (1a2b3c4d5e)" or "head 1a2b3c4d5e + working-tree changes"
    root: Path  # the checkout: the temporary worktree, or the repository itself
    cwd: Path  # where pytest runs: the same place relative to the checkout as the user's directory
    python: str = sys.executable  # the interpreter of its sessions
    environment: tuple[tuple[str, str], ...] = ()  # its sessions' environment (PYTHONPATH with its own code first)


def run(args: argparse.Namespace) -> int:
    repo = _git_toplevel(Path.cwd())
    commit = _resolve_commit(repo, args.base)
    subdir = Path.cwd().resolve().relative_to(repo)
    head = Side("head", f"head {_describe_head(repo)}", repo, repo / subdir)
    started = time.monotonic()
    with _base_worktree(repo, commit) as (worktree, scratch):
        base = Side("base", f"base {args.base} ({commit[:10]})", worktree, worktree / subdir)
        base, head = (_prepared(side, args, repo, scratch) for side in (base, head))
        _refuse_crossed_imports(base, repo)
        documents, comparison, reason = _run_blocks(base, head, args, scratch, started)
    code = emit(comparison, args)
    _progress(reason)
    for line in still_needed(comparison.verdicts, len(documents)):
        _progress(line)
    return code


def _prepared(side: Side, args: argparse.Namespace, head_root: Path, scratch: Path) -> Side:
    """The side with its interpreter and environment, after ``--setup`` ran in its checkout."""
    from pytest_tee.baseline.ab_imports import interpreter, run_setup, side_pythonpath

    # The sessions only measure; this command judges. Their own gate or summaries would only add noise.
    environment = {key: value for key, value in os.environ.items() if key not in _JUDGING_VARIABLES}
    environment["PYTHONPATH"] = side_pythonpath(side.root, environment.get("PYTHONPATH", ""), head_root=head_root)
    if args.setup:
        _progress(f"setup in {side.label}: {args.setup}")
        run_setup(args.setup, side.root, environment, side.label, scratch / f"{side.name}-setup.log")
    python = interpreter(side.root, args.python)
    return replace(side, python=python, environment=tuple(sorted(environment.items())))


def _refuse_crossed_imports(base: Side, head_root: Path) -> None:
    """Refuse when the base side would import the project's code from the head checkout."""
    from pytest_tee.baseline.ab_imports import crossed, import_names, package_roots, probe, refusal

    if not base.cwd.is_dir():
        return  # _run_session says so, naming the folder
    origins = probe(base.python, base.cwd, dict(base.environment), import_names(package_roots(base.root)))
    crossings = crossed(origins, base_root=base.root, head_root=head_root)
    if crossings:
        raise InputError(refusal(crossings, head_root))


def _run_blocks(
    base: Side, head: Side, args: argparse.Namespace, scratch: Path, started: float
) -> tuple[list[dict[str, list[dict[str, Any]]]], Any, str]:
    """Blocks until every verdict is decided (looking after each block from the third) or ``--blocks`` ran.

    Returns the blocks' documents, the last look's comparison and why it stopped.
    """
    from pytest_tee.baseline.models.sessions import MIN_BLOCKS

    total = args.blocks * SESSIONS_PER_BLOCK
    documents: list[dict[str, list[dict[str, Any]]]] = []
    durations: list[float] = []
    comparison = None
    for index, (block, side) in enumerate(block_schedule(args.blocks, {"base": base, "head": head}), start=1):
        if block > len(documents):
            documents.append({"base": [], "head": []})
        _progress(f"block {block}/{args.blocks}, session {index}/{total}: {side.label}")
        session_started = time.monotonic()
        document = _run_session(side, args.pytest_args, scratch / f"{side.name}-{index:03d}")
        documents[block - 1][side.name].append(document)
        level = session_level_line(document, rules_of(args))
        if level:
            _progress(f"  {level}")
        durations.append(time.monotonic() - session_started)
        if index % SESSIONS_PER_BLOCK == 0 and block >= min(MIN_BLOCKS, args.blocks):
            comparison = _judge(documents, base, head, args)
            open_verdicts = len(comparison.inconclusive)
            wall = _minutes(time.monotonic() - started)
            if not open_verdicts:
                decided = len(comparison.verdicts)
                return (
                    documents,
                    comparison,
                    (
                        f"stopped after {block} of at most {args.blocks} blocks ({index} sessions, {wall}): "
                        f"{_decided_line(comparison)}"
                        if decided
                        else f"stopped after {block} blocks: nothing to judge"
                    ),
                )
            if block < args.blocks:
                _progress(
                    f"  look after block {block}: {open_verdicts} of {len(comparison.verdicts)} verdicts "
                    f"not yet decided ({_estimates(comparison.inconclusive)}); going on"
                )
        if index < total:
            _progress(f"  {_time_left(durations, total - index, index)}")
    assert comparison is not None  # the last block always ends with a look
    wall = _minutes(time.monotonic() - started)
    return (
        documents,
        comparison,
        (
            f"reached the maximum of {args.blocks} blocks ({total} sessions, {wall}): "
            f"{len(comparison.inconclusive)} of {len(comparison.verdicts)} verdicts still inconclusive"
        ),
    )


def _judge(
    documents: Sequence[dict[str, list[dict[str, Any]]]], base: Side, head: Side, args: argparse.Namespace
) -> Any:
    """The comparison at this look: every block so far, judged as a sequential run of at most ``--blocks``."""
    from pytest_tee.baseline.compare import compare_blocks
    from pytest_tee.saved_runs import run_from_document

    blocks = [
        (_session_runs(sides, "base", number), _session_runs(sides, "head", number))
        for number, sides in enumerate(documents, start=1)
    ]
    return compare_blocks(
        run_from_document(merge_documents([d for sides in documents for d in sides["base"]]), label=base.label),
        run_from_document(merge_documents([d for sides in documents for d in sides["head"]]), label=head.label),
        blocks,
        rules_of(args),
        allow_env_mismatch=args.allow_env_mismatch,
        refuse_flag="--allow-env-mismatch",
        max_blocks=args.blocks,
    )


def _estimates(verdicts: Sequence[Any], shown: int = 3) -> str:
    """The open verdicts' current estimates: head/base with the repeated 95 % interval."""
    parts = [
        f"{v.metric} {v.ratio:.3f} [{v.ci95[0]:.3f}, {v.ci95[1]:.3f}]"
        + (f" {v.benchmark.rsplit('::', 1)[-1]}" if len(verdicts) > 1 else "")
        for v in verdicts[:shown]
    ]
    return "; ".join(parts) + (f"; {len(verdicts) - shown} more" if len(verdicts) > shown else "")


def _decided_line(comparison: Any) -> str:
    counts = comparison.counts()
    parts = [f"{counts[outcome]} {outcome}" for outcome in ("regressed", "improved", "unchanged") if counts[outcome]]
    return f"every verdict decided ({', '.join(parts)})"


def _time_left(durations: Sequence[float], remaining: int, done: int) -> str:
    """The time to the maximum at the mean session time so far; the run stops earlier once decided."""
    left = remaining * sum(durations) / len(durations)
    block_left = remaining % SESSIONS_PER_BLOCK
    early = (
        f"; or {_minutes(block_left * sum(durations) / len(durations))} if decided after this block"
        if (block_left and done >= SESSIONS_PER_BLOCK * 2)
        else ""
    )
    return f"at most {_minutes(left)} left ({remaining} session{'s' if remaining != 1 else ''} to the maximum){early}"


def _session_runs(sides: dict[str, list[dict[str, Any]]], name: str, block: int) -> list[Any]:
    """One block's sessions of one side as runs (each judged on its own level)."""
    from pytest_tee.saved_runs import RunFileError, run_from_document

    runs = []
    for position, document in enumerate(sides[name], start=1):
        label = f"{name} session {position} of block {block}"
        try:
            runs.append(run_from_document(document, label=label))
        except RunFileError as exc:
            raise InputError(f"{label}: {exc}") from None
    return runs


def session_level_line(document: dict[str, Any], rules: Sequence[tuple[str, float]]) -> str:
    """A session's level (median of its rounds) per gated metric, when it measured one benchmark (else "")."""
    import statistics

    from pytest_tee.records import RecordError, StoredMeasurement

    benchmarks = [bench for bench in document.get("benchmarks", []) if isinstance(bench, dict)]
    tee = (benchmarks[0].get("extra_info") or {}).get("tee") if len(benchmarks) == 1 else None
    try:
        measurement = StoredMeasurement.from_json(tee)
    except RecordError:
        return ""
    levels = [
        f"{metric} {statistics.median(values):.4g}"
        for metric, _ in rules
        if (values := measurement.sample_values(metric))
    ]
    return "level (median of its rounds): " + ", ".join(levels) if levels else ""


def still_needed(verdicts: Sequence[Verdict], blocks: int) -> list[str]:
    """For each inconclusive verdict with a block hint: the blocks and sessions that would likely decide it."""
    lines = []
    for verdict in verdicts:
        hint = verdict.hint
        if verdict.outcome != "inconclusive" or hint is None or hint.unit != "blocks":
            continue
        more = hint.count
        lines.append(
            f"{verdict.benchmark} {verdict.metric}: inconclusive after {blocks} blocks; about {more} more blocks "
            f"({more * SESSIONS_PER_BLOCK} sessions) would likely decide it: rerun with --blocks {blocks + more} "
            "(a new run; it stops as soon as decided)"
        )
    return lines


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def block_schedule(blocks: int, sides: dict[str, Side]) -> Iterator[tuple[int, Side]]:
    """(block number, side) in blocks of four: base head head base in odd blocks, head base base head in even ones."""
    for block in range(1, blocks + 1):
        for name in BLOCK_ORDERS[(block - 1) % 2]:
            yield block, sides[name]


def _progress(message: str) -> None:
    print(f"pytest-tee ab: {message}", file=sys.stderr, flush=True)


def _git(repo: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *arguments], capture_output=True, text=True, check=False)


def _git_toplevel(where: Path) -> Path:
    try:
        result = _git(where, "rev-parse", "--show-toplevel")
    except FileNotFoundError:
        raise InputError("git is not installed; pytest-tee ab checks the base revision out with git") from None
    if result.returncode != 0:
        raise InputError(f"{where} is not inside a git repository; run pytest-tee ab from your project's checkout")
    return Path(result.stdout.strip()).resolve()


def _resolve_commit(repo: Path, rev: str) -> str:
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if result.returncode != 0 or not result.stdout.strip():
        raise InputError(f"--base {rev!r}: not a commit in {repo} (give a branch, tag or commit id)")
    return result.stdout.strip()


def _describe_head(repo: Path) -> str:
    commit = _git(repo, "rev-parse", "--short=10", "HEAD").stdout.strip() or "no commit"
    dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip())
    return f"{commit} + working-tree changes" if dirty else commit


@contextmanager
def _base_worktree(repo: Path, commit: str) -> Iterator[tuple[Path, Path]]:
    """A temporary detached worktree at ``commit`` and a scratch folder beside it; both gone afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="pytest-tee-ab-"))
    worktree = scratch / "base"
    added = _git(repo, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
    if added.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise InputError(f"cannot check out {commit[:10]} in a temporary worktree: {added.stderr.strip()}")
    try:
        yield worktree, scratch
    finally:
        _remove_worktree(repo, worktree)
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_worktree(repo: Path, worktree: Path) -> None:
    if _git(repo, "worktree", "remove", "--force", str(worktree)).returncode != 0:
        # Removed by hand (or half-created): delete the folder, then let git forget it.
        shutil.rmtree(worktree, ignore_errors=True)
        _git(repo, "worktree", "prune")


def _run_session(side: Side, pytest_args: Sequence[str], stem: Path) -> dict[str, Any]:
    """One pytest session of ``side``; its ``--benchmark-json`` document."""
    import json

    json_path, log_path = stem.with_suffix(".json"), stem.with_suffix(".log")
    command = [side.python, "-c", SESSION_BOOTSTRAP, *pytest_args, f"--benchmark-json={json_path}"]
    environment = dict(side.environment) or {
        key: value for key, value in os.environ.items() if key not in _JUDGING_VARIABLES
    }
    if not side.cwd.is_dir():
        raise InputError(f"{side.label}: has no folder {side.cwd.relative_to(side.root)} to run pytest in")
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        returncode = subprocess.run(
            command, cwd=side.cwd, env=environment, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    _progress(f"  {side.name} session finished in {time.monotonic() - started:.0f} s (pytest exit {returncode})")
    if not json_path.exists():
        raise InputError(
            f"{side.label}: pytest exited {returncode} without results; the end of its output:\n{_tail(log_path)}"
        )
    if returncode != 0:
        _progress(f"  {side.name}: pytest exit {returncode}: benchmarks of failed tests are missing from this block")
    try:
        return json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{side.label}: pytest wrote unreadable results ({exc})") from None


def _tail(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def merge_documents(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One side's sessions as one run, for the output's header and what was measured (the verdicts come from the
    sessions one by one): per-round samples of each benchmark concatenated across sessions.

    The first session's document is the template (machine info, commit); each benchmark's ``metrics``
    summaries and ``rounds`` are recomputed from the merged samples.
    """
    from dataclasses import replace

    from pytest_tee.measure.metrics import METRICS, summarize
    from pytest_tee.records import RecordError, StoredMeasurement

    if not documents:
        raise InputError("no sessions to merge")
    merged = copy.deepcopy(documents[0])
    order: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    kept: dict[str, StoredMeasurement] = {}
    for document in documents:
        for bench in document.get("benchmarks", []):
            name = bench.get("fullname")
            if name is None:
                continue
            if name not in entries:
                order.append(name)
                entries[name] = copy.deepcopy(bench)
            try:
                measurement = StoredMeasurement.from_json((bench.get("extra_info") or {}).get("tee"))
            except RecordError:
                continue  # not a pytest-tee measurement: nothing to merge
            if name not in kept:
                entries[name] = copy.deepcopy(bench)  # the first session that measured it is the template
                kept[name] = measurement
            else:
                kept[name] = replace(
                    kept[name],
                    samples=_joined(kept[name].samples, measurement.samples),
                    warmup_samples=_joined(kept[name].warmup_samples, measurement.warmup_samples),
                )
    for name, measurement in kept.items():
        samples = measurement.samples
        merged_measurement = replace(
            measurement,
            metrics={
                metric: summarize(metric, values).to_json()
                for metric, values in samples.items()
                if metric in METRICS and values
            },
            rounds=max((len(values) for values in samples.values()), default=0),
            stop_reason=f"merged from {len(documents)} sessions",
        )
        entries[name].setdefault("extra_info", {})["tee"] = merged_measurement.to_json()
    merged["benchmarks"] = [entries[name] for name in order]
    return merged


def _joined(into: Mapping[str, list[float]], more: Mapping[str, list[float]]) -> dict[str, list[float]]:
    joined = {metric: list(values) for metric, values in into.items()}
    for metric, values in more.items():
        joined.setdefault(metric, []).extend(values)
    return joined
