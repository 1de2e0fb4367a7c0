"""From measurement to the paper's table: a plain run and a run labelled tdx by a TD's sysroot, then the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_tee.cli import main as pytest_tee_main
from tests.fakes.sleepy_model import SLEEPY_CONFTEST

ROOT = Path(__file__).resolve().parents[1]
SYSROOTS = Path(__file__).parent / "sysroots"
BENCH = "def test_decode(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=10)\n"


def measure(pytester: pytest.Pytester, out: str, *args: str) -> dict:
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--tee-models=r1-distill-qwen-1.5b", "--tee-rounds=6",
        f"--benchmark-json={out}", *args,
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    return json.loads((pytester.path / out).read_text())


@pytest.mark.slow
def test_report_ratios_match_the_stored_samples(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.syspath_prepend(str(ROOT))
    pytester.makeconftest(SLEEPY_CONFTEST)  # a stand-in with the 1.5B checkpoint's label: no weights needed
    pytester.makepyfile(test_bench=BENCH)
    cpu = measure(pytester, "cpu.json", f"--tee-sysroot={SYSROOTS / 'plain-vm'}")
    monkeypatch.setenv("SLEEPY_SLOWDOWN", "0.7")  # the "TD" decodes faster, as the paper saw for 1.5B
    tdx = measure(pytester, "tdx.json", f"--tee-sysroot={SYSROOTS / 'kvm-tdx-guest'}")
    assert tdx["machine_info"]["tee"]["tee"] == "tdx"
    assert tdx["benchmarks"][0]["extra_info"]["tee"]["execution_env"] == "tdx"

    output = pytester.path / "report.json"
    runs = [str(pytester.path / "cpu.json"), str(pytester.path / "tdx.json")]
    code = pytest_tee_main(["report", *runs, "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(output.read_text())
    (row,) = report["rows"]
    assert set(row["cells"]) == {"cpu", "tdx"}
    samples = {
        env: np.array(doc["benchmarks"][0]["extra_info"]["tee"]["samples"]["decode_tps"])
        for env, doc in (("cpu", cpu), ("tdx", tdx))
    }
    expected = np.median(samples["tdx"]) / np.median(samples["cpu"])
    ratio = next(value for name, value in row["ratios"].items() if "tdx" in name.lower())
    assert ratio["value"] == pytest.approx(expected, rel=1e-9)
    assert ratio["value"] > 1.2  # the TD side is faster, and the report says by how much
    low, high = ratio["ci95"]
    assert low <= ratio["value"] <= high
    # The two "hosts" differ in more than the TEE; the report lists what, beside the ratio.
    differing = {difference["fact"] for difference in ratio["differences"]}
    assert differing & {"logical_cpus", "cpu_model", "numa_nodes", "cpu_quota"}
