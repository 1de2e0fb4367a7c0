"""``pytest-tee ab`` on a throwaway git repository whose benchmark writes fake pytest-tee data (no models)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pytest_tee import cli
from pytest_tee.baseline import ab_command as ab

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="pytest-tee ab needs git")

CONFTEST = """
def pytest_benchmark_generate_machine_info(config):
    return {"node": "fake"}  # skips py-cpuinfo's slow probe


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["tee"] = {"tee": "none", "fingerprint": "fp", "fingerprint_fields": {"tee": "none"}}
"""

TEST = """
import os
import random

from speed import RATE, SIDE

JITTER = 1 + random.Random(os.getpid()).uniform(-0.01, 0.01)  # each session its own level, as on a real machine


def test_decode(benchmark):
    with open(os.environ["AB_ORDER_LOG"], "a") as log:
        log.write(SIDE + "\\n")
    benchmark.pedantic(lambda: None, rounds=1)
    workload = {"prompt_tokens": 4, "new_tokens": 4, "batch": 1}
    benchmark.extra_info["tee"] = {
        "schema": 1, "execution_env": "cpu", "checkpoint": {"id": "fake"}, "workload": workload, "metrics": {},
        "samples": {"decode_tps": [RATE * JITTER * (1 + 0.002 * i) for i in range(5)]},
        "comparison_key": {"workload": workload},
    }
"""

PYTEST_ARGS = ["--", "-q", "-p", "no:cacheprovider", "-p", "no:tee", "-p", "no:randomly"]


def git(repo: Path, *arguments: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *arguments]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Committed: the base (100 tok/s). Working tree: the head (80 tok/s), not committed."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_speed.py").write_text(TEST)
    (root / "speed.py").write_text('SIDE = "base"\nRATE = 100.0\n')
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    (root / "speed.py").write_text('SIDE = "head"\nRATE = 80.0\n')
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("AB_ORDER_LOG", str(tmp_path / "order.log"))
    monkeypatch.chdir(root)
    return root


def worktrees(repo: Path) -> int:
    return git(repo, "worktree", "list", "--porcelain").count("worktree ")


@pytest.mark.slow
def test_ab_runs_abba_blocks_judges_sessions_and_cleans_up(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ab", "--base", "HEAD", "--blocks", "3", "--format", "json", *PYTEST_ARGS]) == 1
    order = (repo.parent / "order.log").read_text().split()
    assert order == ["base", "head", "head", "base", "head", "base", "base", "head", "base", "head", "head", "base"]
    captured = capsys.readouterr()
    (verdict,) = json.loads(captured.out)["verdicts"]
    assert verdict["outcome"] == "regressed"
    detail = verdict["detail"]
    assert (verdict["model"], detail["sessions_base"], detail["sessions_head"], detail["df"]) == ("blocks", 6, 6, 2)
    assert verdict["ratio"] == pytest.approx(0.8, rel=0.03)
    assert "block 3/3, session 12/12: base" in captured.err
    assert "left (1 session)" in captured.err
    assert "level (median of its rounds): decode_tps 8" in captured.err  # the head sessions, ~80 tok/s
    assert worktrees(repo) == 1
    assert list((repo.parent / "scratch").iterdir()) == []
    assert (repo / "speed.py").read_text().startswith('SIDE = "head"')  # the working tree is left alone


def test_ab_removes_the_worktree_on_ctrl_c(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ab, "_run_session", interrupted)
    assert cli.main(["ab", "--base", "HEAD", *PYTEST_ARGS]) == 130
    assert worktrees(repo) == 1
    assert list((repo.parent / "scratch").iterdir()) == []


def test_ab_bad_revision_and_no_repository(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ab", "--base", "no-such-branch"]) == 2
    assert "--base 'no-such-branch': not a commit" in capsys.readouterr().err
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert cli.main(["ab", "--base", "HEAD"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err


def test_block_schedule_alternates_abba_and_baab() -> None:
    sides = {"base": "B", "head": "H"}
    schedule = list(ab.block_schedule(3, sides))  # type: ignore[arg-type]
    assert "".join(name for _, name in schedule) == "BHHB" + "HBBH" + "BHHB"
    assert [block for block, _ in schedule] == [1] * 4 + [2] * 4 + [3] * 4


def test_ab_says_how_many_more_blocks_an_inconclusive_verdict_needs() -> None:
    from pytest_tee.records import Hint, Verdict

    open_verdict = Verdict(
        "t.py::test_a", "decode_tps", 10, 9.3, 0.93, (0.85, 1.02), "inconclusive", hint=Hint(5, "blocks")
    )
    decided = Verdict("t.py::test_b", "decode_tps", 10, 8, 0.8, (0.75, 0.85), "regressed")
    (line,) = ab.still_needed([open_verdict, decided], blocks=6)
    assert "about 5 more blocks (20 sessions)" in line
    assert "--blocks 11" in line


def test_merge_documents_concatenates_samples_per_benchmark() -> None:
    def doc(values: list[float]) -> dict[str, object]:
        tee = {
            "schema": 1,
            "execution_env": "cpu",
            "checkpoint": {"id": "fake"},
            "workload": {"prompt_tokens": 8, "new_tokens": 4, "batch": 1},
            "samples": {"decode_tps": values},
            "metrics": {},
        }
        return {"machine_info": {}, "benchmarks": [{"fullname": "t.py::test_a", "extra_info": {"tee": tee}}]}

    merged = ab.merge_documents([doc([1.0, 2.0]), doc([3.0])])
    tee = merged["benchmarks"][0]["extra_info"]["tee"]
    assert tee["samples"]["decode_tps"] == [1.0, 2.0, 3.0]
    assert tee["metrics"]["decode_tps"]["median"] == 2.0
    assert tee["rounds"] == 3
