"""``pytest-tee ab --base REV [-- PYTEST-ARGS]``: same-runner A/B of a base revision against the working tree.

The base revision is checked out in a temporary ``git worktree``; base and head pytest sessions then run in blocks
of four — base, head, head, base in odd blocks, head, base, base, head in even ones — so that drift in the machine
(heat, clocks, neighbours) falls on both sides alike and cancels within each block. Sessions, not rounds, are the
unit: each session's level is the median of its rounds, and ``sessions.decide_blocks`` judges the per-block
differences of mean log levels with a t-test over blocks. The worktree is removed afterwards, also on Ctrl-C or
an error.

Why 18 blocks by default: on a shared 2-vCPU runner session levels vary by ~9 % (log SD 0.09) from session to
session. With sessions that noisy and independent, 18 blocks (72 sessions) are the fewest that catch a 10 % drop
≥ 95 % of the time at 5 rounds a session with ≤ 1 % false alarms (simulated); on that runner, where ABBA also
cancels drift, 10–12 blocks already did (docs/baselines-and-gating.md). Quieter runners need fewer: an
inconclusive verdict says how many more blocks would likely decide it.
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
from dataclasses import dataclass
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
    add_gate_arguments(parser)
    parser.add_argument("pytest_args", nargs="*", metavar="PYTEST-ARGS", help="after --: arguments for each pytest run")


@dataclass(frozen=True)
class Side:
    name: str  # "base" or "head"
    label: str  # e.g. "base main (1a2b3c4d5e)" or "head 1a2b3c4d5e + working-tree changes"
    root: Path  # the checkout: the temporary worktree, or the repository itself
    cwd: Path  # where pytest runs: the same place relative to the checkout as the user's directory


def run(args: argparse.Namespace) -> int:
    from pytest_tee.baseline.compare import compare_blocks
    from pytest_tee.saved_runs import run_from_document

    repo = _git_toplevel(Path.cwd())
    commit = _resolve_commit(repo, args.base)
    subdir = Path.cwd().resolve().relative_to(repo)
    head = Side("head", f"head {_describe_head(repo)}", repo, repo / subdir)
    total = args.blocks * SESSIONS_PER_BLOCK
    with _base_worktree(repo, commit) as (worktree, scratch):
        base = Side("base", f"base {args.base} ({commit[:10]})", worktree, worktree / subdir)
        documents: list[dict[str, list[dict[str, Any]]]] = [{"base": [], "head": []} for _ in range(args.blocks)]
        durations: list[float] = []
        for index, (block, side) in enumerate(block_schedule(args.blocks, {"base": base, "head": head}), start=1):
            _progress(f"block {block}/{args.blocks}, session {index}/{total}: {side.label}")
            started = time.monotonic()
            document = _run_session(side, args.pytest_args, scratch / f"{side.name}-{index:03d}")
            documents[block - 1][side.name].append(document)
            level = session_level_line(document, rules_of(args))
            if level:
                _progress(f"  {level}")
            durations.append(time.monotonic() - started)
            if index < total:
                left = (total - index) * sum(durations) / len(durations)
                remaining = total - index
                _progress(f"  about {_minutes(left)} left ({remaining} session{'s' if remaining != 1 else ''})")
    blocks = [
        (_session_runs(sides, "base", number), _session_runs(sides, "head", number))
        for number, sides in enumerate(documents, start=1)
    ]
    comparison = compare_blocks(
        run_from_document(merge_documents([d for sides in documents for d in sides["base"]]), label=base.label),
        run_from_document(merge_documents([d for sides in documents for d in sides["head"]]), label=head.label),
        blocks,
        rules_of(args),
        allow_env_mismatch=args.allow_env_mismatch,
        refuse_flag="--allow-env-mismatch",
    )
    code = emit(comparison, args)
    for line in still_needed(comparison.verdicts, args.blocks):
        _progress(line)
    return code


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
            f"({more * SESSIONS_PER_BLOCK} sessions) would likely decide it: rerun with --blocks {blocks + more}"
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
    command = [sys.executable, "-m", "pytest", *pytest_args, f"--benchmark-json={json_path}"]
    # The sessions only measure; this command judges. Their own gate or summaries would only add noise.
    environment = {key: value for key, value in os.environ.items() if key not in _JUDGING_VARIABLES}
    # The checkout's own packages first (its pytest_tee too, if the revision has one).
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(side.root), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    )
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
