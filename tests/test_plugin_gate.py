"""The regression gate in real pytest sessions: base saves, head compares, a drop fails with a table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fakes.sleepy_model import SLEEPY_CONFTEST

BENCH = "def test_decode(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=12)\n"
ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.syspath_prepend(ROOT)
    pytester.makeconftest(SLEEPY_CONFTEST)
    pytester.makepyfile(test_bench=BENCH)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return pytester


def session(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-models=tiny-qwen2", "--tee-rounds=8", *args)


def save_baseline(pytester: pytest.Pytester) -> None:
    result = session(pytester, "--benchmark-autosave")
    assert result.ret == 0, result.stdout.str()


@pytest.mark.slow
def test_a_real_drop_fails_the_session_with_a_table(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    save_baseline(project)
    monkeypatch.setenv("SLEEPY_SLOWDOWN", "1.6")
    result = session(
        project,
        "--tee-compare",
        "--tee-fail-drop=decode_tps:5%",
        "--tee-summary=summary.md",
        "--tee-verdicts=verdicts.json",
    )
    assert result.ret == 1, result.stdout.str()
    out = result.stdout.str()
    assert "regressed" in out
    assert "decode_tps" in out
    assert "pytest-tee: failing the session (exit code 1)" in out
    assert "Traceback" not in out
    verdicts = json.loads((project.path / "verdicts.json").read_text())
    (verdict,) = verdicts["verdicts"]
    assert verdict["outcome"] == "regressed"
    assert verdict["ratio"] < 0.8
    assert "regressed" in (project.path / "summary.md").read_text()


@pytest.mark.slow
def test_the_same_code_passes(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    save_baseline(project)
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = session(project, "--tee-compare", "--tee-fail-drop=decode_tps:5%")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "regression gate" in out
    assert "decode_tps" in out
    assert ("unchanged" in out) or ("inconclusive" in out)
    text = step_summary.read_text()
    assert text.startswith("earlier step\n")
    assert "decode_tps" in text


@pytest.mark.slow
def test_missing_baseline_has_its_own_exit_code_and_a_way_through(project: pytest.Pytester):
    result = session(project, "--tee-compare")
    assert result.ret == 6
    assert "no pytest-tee baseline in .benchmarks" in result.stdout.str()
    result = session(project, "--tee-compare", "--tee-allow-missing-baseline")
    assert result.ret == 0


@pytest.mark.slow
def test_corrupt_baseline_is_named_and_left_alone(project: pytest.Pytester):
    save_baseline(project)
    (stored,) = (project.path / ".benchmarks").glob("*/*.json")
    original = stored.read_bytes()
    stored.write_bytes(original[: len(original) // 2])
    damaged = stored.read_bytes()
    result = session(project, "--tee-compare")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert stored.name in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert stored.read_bytes() == damaged


@pytest.mark.slow
def test_different_environment_is_refused_with_the_differences(project: pytest.Pytester):
    save_baseline(project)
    sysroot = Path(__file__).parent / "sysroots" / "plain-vm"
    result = session(project, "--tee-compare=0001", f"--tee-sysroot={sysroot}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str()
    assert "cpu_model" in out or "logical_cpus" in out
    result = session(project, "--tee-compare=0001", f"--tee-sysroot={sysroot}", "--tee-allow-env-mismatch")
    assert result.ret in (0, 1)  # compared anyway (the sleepy model is not slower)
    assert "decode_tps" in result.stdout.str()


@pytest.mark.slow
def test_pytest_benchmark_compare_reads_the_saved_runs(project: pytest.Pytester):
    import subprocess
    import sys

    save_baseline(project)
    save_baseline(project)
    # The pytest-benchmark CLI imports ./conftest.py, which imports the stand-in model from this repository.
    env = {**os.environ, "PYTHONPATH": ROOT}
    listing = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "list"], cwd=project.path, capture_output=True, text=True, env=env
    )
    assert listing.returncode == 0
    assert listing.stdout.count(".json") == 2
    compared = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", "0001", "0002"],
        cwd=project.path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert compared.returncode == 0, compared.stderr
    assert "test_decode" in compared.stdout


@pytest.mark.slow
def test_verdict_hook_replaces_the_decision(project: pytest.Pytester):
    save_baseline(project)
    project.makeconftest(
        SLEEPY_CONFTEST
        + """
from pytest_tee import Verdict

def pytest_tee_generate_verdict(config, benchmark, metric, base, head, threshold_pct, higher_is_better):
    return Verdict(benchmark, metric, 1.0, 0.5, 0.5, (0.5, 0.5), "regressed", note="site policy")
"""
    )
    result = session(project, "--tee-compare")
    assert result.ret == 1
    assert "regressed" in result.stdout.str()
