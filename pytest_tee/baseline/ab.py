"""``pytest-tee ab --base REV [-- PYTEST-ARGS]``: same-runner A/B of a base revision against the working tree.

The base revision is checked out in a temporary ``git worktree``; base and head pytest sessions then alternate in
ABBA order (block 1 runs base then head, block 2 head then base, …) so that drift in the machine (heat, clock,
neighbours) falls on both sides alike. Each side's per-round samples are merged across blocks and judged by the
same gate as ``pytest-tee compare``. The worktree is removed afterwards, also on Ctrl-C or an error.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tee.baseline.compare_command import add_gate_arguments, emit, rules_of
from pytest_tee.errors import InputError

SIDES = ("base", "head")
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
        default=4,
        metavar="N",
        help="base/head session pairs, run in ABBA order (default 4: base head head base base head head base)",
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
    from pytest_tee.baseline.compare import compare_runs
    from pytest_tee.results import run_from_document

    repo = _git_toplevel(Path.cwd())
    commit = _resolve_commit(repo, args.base)
    subdir = Path.cwd().resolve().relative_to(repo)
    head = Side("head", f"head {_describe_head(repo)}", repo, repo / subdir)
    with _base_worktree(repo, commit) as (worktree, scratch):
        base = Side("base", f"base {args.base} ({commit[:10]})", worktree, worktree / subdir)
        documents: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
        for block, side in block_schedule(args.blocks, {"base": base, "head": head}):
            _progress(f"block {block}/{args.blocks}: {side.label}")
            documents[side.name].append(_run_session(side, args.pytest_args, scratch / f"{side.name}-{block}"))
    comparison = compare_runs(
        run_from_document(merge_documents(documents["base"]), label=base.label),
        run_from_document(merge_documents(documents["head"]), label=head.label),
        rules_of(args),
        allow_env_mismatch=args.allow_env_mismatch,
        refuse_flag="--allow-env-mismatch",
    )
    return emit(comparison, args)


def block_schedule(blocks: int, sides: dict[str, Side]) -> Iterator[tuple[int, Side]]:
    """(block number, side) in ABBA order: base first in odd blocks, head first in even ones."""
    for block in range(1, blocks + 1):
        order = SIDES if block % 2 == 1 else tuple(reversed(SIDES))
        for name in order:
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
    """One side's sessions as one run: per-round samples of each benchmark concatenated across sessions.

    The first session's document is the template (machine info, commit); each benchmark's ``metrics``
    summaries and ``rounds`` are recomputed from the merged samples.
    """
    from pytest_tee.measure.metrics import METRICS, summarize

    if not documents:
        raise InputError("no sessions to merge")
    merged = copy.deepcopy(documents[0])
    order: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    for document in documents:
        for bench in document.get("benchmarks", []):
            name = bench.get("fullname")
            tee = (bench.get("extra_info") or {}).get("tee")
            if name is None:
                continue
            if name not in entries:
                order.append(name)
            kept = (entries.get(name, {}).get("extra_info") or {}).get("tee")
            if not isinstance(kept, dict):
                entries[name] = copy.deepcopy(bench)  # the first session that measured it is the template
            elif isinstance(tee, dict):
                _append_samples(kept, tee)
    for entry in entries.values():
        tee = (entry.get("extra_info") or {}).get("tee")
        if not isinstance(tee, dict):
            continue
        samples = tee.get("samples", {})
        tee["metrics"] = {
            metric: summarize(metric, values).to_dict()
            for metric, values in samples.items()
            if metric in METRICS and values
        }
        tee["rounds"] = max((len(values) for values in samples.values()), default=0)
        tee["stop_reason"] = f"merged from {len(documents)} sessions"
    merged["benchmarks"] = [entries[name] for name in order]
    return merged


def _append_samples(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key in ("samples", "warmup_samples"):
        target = into.setdefault(key, {})
        for metric, values in (more.get(key) or {}).items():
            target.setdefault(metric, []).extend(values)
