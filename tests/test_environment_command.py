"""``pytest-tee env``: the JSON record, the table, bad input, and the bandwidth measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_tee.cli import main
from pytest_tee.environment import bandwidth
from pytest_tee.environment.detection import detect
from pytest_tee.environment.record import Environment

SYSROOTS = Path(__file__).parent / "sysroots"


def run_env(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["env", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_is_exactly_the_environment_record(capsys: pytest.CaptureFixture[str]):
    sysroot = SYSROOTS / "kvm-tdx-guest"
    code, out, err = run_env(capsys, "--json", "--sysroot", str(sysroot))
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert record == json.loads(json.dumps(detect(sysroot).to_dict()))
    assert (record["tee"], record["platform"]) == ("tdx", "kvm")
    assert "bandwidth" not in record
    assert Environment.from_dict(record).fingerprint == record["fingerprint"]


def test_text_output_is_the_table(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_env(capsys, "--sysroot", str(SYSROOTS / "azure-tdx-guest"))
    assert code == 0
    assert out.startswith("tee          tdx")
    assert "platform     azure-paravisor" in out
    assert "kernel log: Hyper-V Isolation Config" in out


def test_missing_sysroot_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    missing = tmp_path / "no-such-dir"
    code, out, err = run_env(capsys, "--json", "--sysroot", str(missing))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"pytest-tee env: error: --sysroot {missing}: not an existing directory")


def test_sysroot_that_is_a_file_is_rejected(capsys: pytest.CaptureFixture[str]):
    code, _, err = run_env(capsys, "--sysroot", str(SYSROOTS / "partial-dmesg-only" / "var" / "log" / "dmesg"))
    assert code == 2
    assert "not an existing directory" in err


def test_bandwidth_cannot_describe_a_sysroot(capsys: pytest.CaptureFixture[str]):
    code, _, err = run_env(capsys, "--bandwidth", "--sysroot", str(SYSROOTS / "plain-vm"))
    assert code == 2
    assert "--bandwidth measures this machine" in err


def test_bandwidth_key_is_added_to_the_record(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    measured = {"method": "stub", "read_gbps": 20.0, "read_gbps_best": 21.0, "repetitions": 3}
    monkeypatch.setattr(bandwidth, "measure_read_bandwidth", lambda: measured)
    code, out, _ = run_env(capsys, "--json", "--bandwidth")
    record = json.loads(out)
    assert code == 0
    assert record["bandwidth"] == measured
    assert set(record) - {"bandwidth"} == set(detect("/").to_dict())


def test_measure_read_bandwidth_reports_its_method():
    result = bandwidth.measure_read_bandwidth(size_mib=8, seconds=0.01, threads=1)
    assert result["buffer_mib"] == 8
    assert result["threads"] == 1
    assert result["repetitions"] >= 3
    assert 0 < result["read_gbps"] <= result["read_gbps_best"]
    assert result["method"].startswith("torch.sum")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"size_mib": 0}, "size_mib"), ({"seconds": 0}, "seconds"), ({"threads": 0}, "threads")],
)
def test_measure_read_bandwidth_rejects_bad_arguments(kwargs: dict[str, float], message: str):
    with pytest.raises(ValueError, match=message):
        bandwidth.measure_read_bandwidth(**kwargs)
