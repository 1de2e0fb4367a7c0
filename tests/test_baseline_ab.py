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
def test_ab_runs_abba_blocks_stops_once_decided_and_cleans_up(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ab", "--base", "HEAD", "--blocks", "4", "--format", "json", *PYTEST_ARGS]) == 1
    order = (repo.parent / "order.log").read_text().split()
    blocks = len(order) // 4
    assert blocks == 3  # a 20 % drop with sessions 1 % apart is decided at the first look, before the maximum
    assert order == (["base", "head", "head", "base", "head", "base", "base", "head"] * 4)[: 4 * blocks]
    captured = capsys.readouterr()
    (verdict,) = json.loads(captured.out)["verdicts"]
    assert verdict["outcome"] == "regressed"
    detail = verdict["detail"]
    assert (verdict["model"], detail["sessions_base"], detail["df"]) == ("blocks", 2 * blocks, blocks - 1)
    assert verdict["ratio"] == pytest.approx(0.8, rel=0.03)
    assert "block 1/4, session 1/16: base" in captured.err
    assert "left (15 sessions to the maximum)" in captured.err
    assert "stopped after 3 of at most 4 blocks (12 sessions, " in captured.err
    assert "every verdict decided (1 regressed)" in captured.err
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


PYPROJECT_SRC = """
[project]
name = "speedpkg"
version = "0"

[tool.setuptools.packages.find]
where = ["src"]
"""

SITECUSTOMIZE = """
import importlib.machinery
import sys

HEAD_SRC = {head_src!r}


class AheadOfPythonpath:  # like meson-python's editable loader: a finder in front of sys.path
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "speedpkg":
            return None
        return importlib.machinery.PathFinder.find_spec(name, [HEAD_SRC])


sys.meta_path.insert(0, AheadOfPythonpath)
"""


@pytest.fixture
def src_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same project with its code under src/ (base 100 tok/s committed, head 80 tok/s in the working tree),
    and the head's src/ on PYTHONPATH — what a src layout needs to be importable, as an editable install's .pth is.
    """
    (repo / "speed.py").unlink()
    (repo / "pyproject.toml").write_text(PYPROJECT_SRC)
    package = repo / "src" / "speedpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('SIDE = "base"\nRATE = 100.0\n')
    (repo / "test_speed.py").write_text(TEST.replace("from speed import", "from speedpkg import"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "src layout")
    (package / "__init__.py").write_text('SIDE = "head"\nRATE = 80.0\n')
    monkeypatch.setenv("PYTHONPATH", str(repo / "src"))
    return repo


def test_ab_measures_the_base_code_of_a_src_layout_after_setup(
    src_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_log = src_repo.parent / "setup.log"
    monkeypatch.setenv("AB_SETUP_LOG", str(setup_log))
    arguments = ["ab", "--base", "HEAD", "--blocks", "3", "--setup", 'pwd >> "$AB_SETUP_LOG"', "--format", "json"]
    assert cli.main([*arguments, *PYTEST_ARGS]) == 1
    # Each session logs the SIDE of the speedpkg it imported: the base sessions imported the base revision.
    order = (src_repo.parent / "order.log").read_text().split()
    assert order == ["base", "head", "head", "base", "head", "base", "base", "head", "base", "head", "head", "base"]
    (verdict,) = json.loads(capsys.readouterr().out)["verdicts"]
    assert verdict["outcome"] == "regressed"
    assert verdict["ratio"] == pytest.approx(0.8, rel=0.03)
    ran_in = setup_log.read_text().split()
    assert len(ran_in) == 2
    assert Path(ran_in[1]).resolve() == src_repo.resolve()
    assert Path(ran_in[0]).name == "base"


def test_ab_refuses_when_the_base_would_import_head_code(
    src_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE.format(head_src=str(src_repo / "src")))
    monkeypatch.setenv("PYTHONPATH", f"{hooks}:{src_repo / 'src'}")
    assert cli.main(["ab", "--base", "HEAD", "--blocks", "3", *PYTEST_ARGS]) == 2
    err = capsys.readouterr().err
    assert "the base side would import the head's code" in err
    assert f"speedpkg from {(src_repo / 'src' / 'speedpkg' / '__init__.py').resolve()}" in err
    assert "--setup" in err
    assert "--python" in err
    assert not (src_repo.parent / "order.log").exists()  # refused before any session
    assert worktrees(src_repo) == 1


def test_ab_python_must_exist_in_each_checkout(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ab", "--base", "HEAD", "--python", ".venv-ab/bin/python", *PYTEST_ARGS]) == 2
    assert "--python '.venv-ab/bin/python': no interpreter at" in capsys.readouterr().err
    assert worktrees(repo) == 1


@pytest.mark.parametrize(
    ("files", "roots"),
    [
        ({"pkg/__init__.py": ""}, ["."]),  # flat
        ({"src/pkg/__init__.py": ""}, ["src"]),  # src/ by convention
        ({"pyproject.toml": '[tool.setuptools.packages.find]\nwhere = ["lib"]\n', "lib/pkg/__init__.py": ""}, ["lib"]),
        ({"pyproject.toml": '[tool.setuptools]\npackage-dir = {"" = "code"}\n', "code/pkg/__init__.py": ""}, ["code"]),
        (
            {"pyproject.toml": '[tool.hatch.build.targets.wheel]\npackages = ["python/pkg"]\n', "python/pkg/x.py": ""},
            ["python"],
        ),
        (
            {"pyproject.toml": '[tool.poetry]\npackages = [{include = "pkg", from = "lib"}]\n', "lib/pkg/x.py": ""},
            ["lib"],
        ),
        ({"setup.cfg": "[options]\npackage_dir =\n    =source\n", "source/pkg/__init__.py": ""}, ["source"]),
        ({"pyproject.toml": '[tool.setuptools.packages.find]\nwhere = ["gone"]\n'}, ["."]),  # named but missing
    ],
)
def test_package_roots_follow_the_build_configuration(tmp_path: Path, files: dict[str, str], roots: list[str]) -> None:
    from pytest_tee.baseline.ab_imports import package_roots

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert package_roots(tmp_path) == [(tmp_path / root).resolve() for root in roots]


def test_side_pythonpath_moves_head_paths_into_the_base_checkout(tmp_path: Path) -> None:
    from pytest_tee.baseline.ab_imports import import_names, side_pythonpath

    head, base = tmp_path / "head", tmp_path / "base"
    for checkout in (head, base):
        (checkout / "src" / "pkg").mkdir(parents=True)
        (checkout / "src" / "pkg" / "__init__.py").write_text("")
    inherited = f"{head / 'src'}:{tmp_path / 'elsewhere'}"
    entries = side_pythonpath(base, inherited, head_root=head.resolve()).split(":")
    # The head's src/ became the base's (already first), the unrelated entry stays, nothing points into the head.
    assert entries == [str((base / "src").resolve()), str(base), str(tmp_path / "elsewhere")]
    assert import_names([base / "src"]) == ["pkg"]


def test_a_broken_pyproject_is_named(tmp_path: Path) -> None:
    from pytest_tee.baseline.ab_imports import package_roots
    from pytest_tee.errors import InputError

    (tmp_path / "pyproject.toml").write_text("[tool.setuptools\n")
    with pytest.raises(InputError, match=r"pyproject\.toml: not valid TOML"):
        package_roots(tmp_path)


def test_a_look_shows_the_open_estimates() -> None:
    from pytest_tee.baseline.gate import Verdict

    one = Verdict("t.py::test_a", "decode_tps", 10, 8, 0.8, (0.6, 1.1), "inconclusive")
    assert ab._estimates([one]) == "decode_tps 0.800 [0.600, 1.100]"
    many = ab._estimates([one] * 5)
    assert many.count("test_a") == 3
    assert many.endswith("; 2 more")


def test_a_failing_setup_stops_ab_with_its_output(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ab", "--base", "HEAD", "--setup", "echo cannot build; exit 3", *PYTEST_ARGS]) == 2
    err = capsys.readouterr().err
    assert "--setup 'echo cannot build; exit 3' failed in base HEAD" in err
    assert "(exit 3); the end of its output:\ncannot build" in err
    assert not (repo.parent / "order.log").exists()
    assert worktrees(repo) == 1
