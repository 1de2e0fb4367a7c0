"""One attestation binds both files pytest-benchmark writes (--benchmark-json and storage), as really written.

The hook here does what the plugin does with --tee-attest, so the binding is checked against pytest-benchmark's
own writers rather than against documents built by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_tee.attestation import verify_command
from pytest_tee.attestation.simulate import SimulatedTd
from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS

CONFTEST = """
import pytest
from pytest_tee.attestation.binding import SessionAttestor

ATTESTOR = SessionAttestor(sysroot={sysroot!r}, gpu=False)

# A wrapper runs its second half after every other implementation has added to the document.
@pytest.hookimpl(wrapper=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    result = yield
    output_json.setdefault("pytest_tee", {{"schema": 1}})  # everything else first, then attest
    ATTESTOR.attach(output_json)
    return result


class SiteFacts:  # another plugin adding to the document: covered because the wrapper attests after it
    def pytest_benchmark_update_json(self, config, benchmarks, output_json):
        output_json["machine_info"]["site"] = "rack 7"


def pytest_configure(config):
    config.pluginmanager.register(SiteFacts())
"""

TEST = """
def test_sum(benchmark):
    benchmark.extra_info["tee"] = {"samples": {"decode_tps": [4.0, 4.1]}}
    benchmark.pedantic(sum, args=(range(100),), rounds=3, iterations=1)
"""


def verify(path: Path) -> int:
    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    # The simulated quote is signed under a self-made root, trusted here through the test-only keyword.
    return verify_command.run(parser.parse_args([str(path)]), anchors=SIMULATED_ANCHORS)


@pytest.mark.slow
def test_one_quote_binds_the_json_file_and_the_saved_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    with SimulatedTd(tmp_path / "td") as td:
        pytester.makeconftest(CONFTEST.format(sysroot=str(td.sysroot)))
        pytester.makepyfile(test_bench=TEST)
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--benchmark-json=out.json", "--benchmark-autosave",
            f"--benchmark-storage=file://{pytester.path / 'storage'}",
        )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert len(td.requests) == 1  # one quote for the session
    json_file = pytester.path / "out.json"
    (saved,) = (pytester.path / "storage").rglob("*.json")
    for path in (json_file, saved):
        doc = json.loads(path.read_text())
        assert doc["pytest_tee"]["attestation"]["evidence"], path
        assert verify(path) == 0, path
    assert json.loads(json_file.read_text())["machine_info"]["site"] == "rack 7"
    assert "data" in json.loads(json_file.read_text())["benchmarks"][0]["stats"]
    assert "data" not in json.loads(saved.read_text())["benchmarks"][0]["stats"]
