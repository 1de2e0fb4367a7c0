"""--tee-attest end to end in a simulated TD: a tiny benchmark, its results bound to a quote, then verified."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_tee.attestation import verify_command
from pytest_tee.attestation.simulate import SimulatedTd
from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS
from pytest_tee.cli import build_parser
from pytest_tee.cli import main as pytest_tee_main
from pytest_tee.errors import InputError
from pytest_tee.saved_runs import load_run

SECRET = "launch codes for the quarterly board meeting"

BENCH = f"""
def test_decode(tokens_per_second):
    tokens_per_second(new_tokens=4, prompt={SECRET!r})
"""


@pytest.fixture
def tiny_with_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pytest_tee.checkpoints.catalogue import get
    from pytest_tee.checkpoints.testing import save_synthetic_checkpoint

    return save_synthetic_checkpoint(get("tiny-qwen2"), tmp_path_factory.mktemp("tiny"))


def attested_session(pytester: pytest.Pytester, td: SimulatedTd, model_dir: Path, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_bench=BENCH)
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--tee-models=tiny-qwen2", f"--tee-model-path=tiny-qwen2={model_dir}",
        "--tee-rounds=2", "--tee=tdx", "--tee-attest", f"--tee-sysroot={td.sysroot}",
        "--benchmark-json=out.json", "--benchmark-autosave", *args,
    )  # fmt: skip


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``pytest-tee verify`` as the command line runs it, but trusting the simulated TD's self-made root
    (the test-only ``anchors`` keyword); ``InputError`` → exit 2 as in ``pytest_tee.cli``."""
    parsed = build_parser().parse_args(["verify", *args])
    try:
        code = verify_command.run(parsed, anchors=SIMULATED_ANCHORS)
    except InputError as exc:
        print(f"pytest-tee verify: error: {exc}", file=sys.stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.slow
def test_attested_results_verify_and_any_edit_is_caught(
    pytester: pytest.Pytester, tmp_path: Path, tiny_with_tokenizer: Path, capsys: pytest.CaptureFixture[str]
):
    with SimulatedTd(tmp_path / "td") as td:
        result = attested_session(pytester, td, tiny_with_tokenizer)
    assert result.ret == 0, result.stdout.str()
    assert len(td.requests) == 1  # one quote binds the session's two files
    result.stdout.fnmatch_lines(["*attestation: *bound to these results*"])
    out_json = pytester.path / "out.json"
    (saved,) = (pytester.path / ".benchmarks").rglob("*.json")

    for path in (out_json, saved):
        code, text = verify(capsys, str(path))
        assert code == 0, text
        assert "PASS  tdx-quote: quote signature" in text
    # The real command line trusts only Intel's root: the same file fails there, on the pin alone.
    assert pytest_tee_main(["verify", str(out_json)]) == 1
    failures = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1
    assert failures[0].startswith("FAIL  tdx-quote: root pin:")
    document = json.loads(out_json.read_text())
    block = document["pytest_tee"]["attestation"]
    mrtd = next(item["fields"]["mrtd"] for item in block["evidence"] if item["fields"].get("mrtd"))
    assert verify(capsys, str(out_json), f"--expect-mrtd={mrtd}")[0] == 0

    # Nothing confidential in the results or the evidence.
    for path in (out_json, saved):
        assert "quarterly board" not in path.read_text()
    assert "quarterly board" not in result.stdout.str()

    # One number changed after the fact: the binding check fails and says so.
    edited = pytester.path / "edited.json"
    bench = document["benchmarks"][0]["extra_info"]["tee"]
    bench["metrics"]["decode_tps"]["median"] *= 1.25
    edited.write_text(json.dumps(document))
    code, text = verify(capsys, str(edited))
    assert code == 1
    assert "REPORTDATA" in text

    # A different TD identity than expected.
    code, text = verify(capsys, str(out_json), "--expect-mrtd=" + "00" * 48)
    assert code == 1
    assert "MRTD" in text


@pytest.mark.slow
def test_truncated_quote_in_results_is_a_clear_error(
    pytester: pytest.Pytester, tmp_path: Path, tiny_with_tokenizer: Path, capsys: pytest.CaptureFixture[str]
):
    import base64

    with SimulatedTd(tmp_path / "td") as td:
        assert attested_session(pytester, td, tiny_with_tokenizer).ret == 0
    document = json.loads((pytester.path / "out.json").read_text())
    for item in document["pytest_tee"]["attestation"]["evidence"]:
        item["raw"] = base64.b64encode(base64.b64decode(item["raw"])[:100]).decode()
    broken = pytester.path / "broken.json"
    broken.write_text(json.dumps(document))
    code, text = verify(capsys, str(broken))
    assert code == 1
    assert "offset" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_debug_td_is_called_out_in_the_header_and_summary(
    pytester: pytest.Pytester, tmp_path: Path, tiny_with_tokenizer: Path
):
    with SimulatedTd(tmp_path / "td", debug=True) as td:
        result = attested_session(pytester, td, tiny_with_tokenizer)
    assert result.ret == 0
    out = result.stdout.str()
    header = out.split("collected")[0]
    assert "NOT CONFIDENTIAL" in header
    assert out.count("NOT CONFIDENTIAL") >= 2  # the header and the attestation summary


@pytest.mark.slow
def test_attest_without_a_td_records_why_and_goes_on(pytester: pytest.Pytester, tiny_with_tokenizer: Path):
    pytester.makepyfile(test_bench=BENCH)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--tee-models=tiny-qwen2", f"--tee-model-path=tiny-qwen2={tiny_with_tokenizer}",
        "--tee-rounds=2", "--tee-attest", "--benchmark-json=out.json",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    block = json.loads((pytester.path / "out.json").read_text())["pytest_tee"]["attestation"]
    assert not block["evidence"]
    assert {failure["reason"] for failure in block["failures"]} & {"no-device", "no-provider"}
    result.stdout.fnmatch_lines(["*attestation: no evidence collected*"])
    assert load_run(pytester.path / "out.json").measurements  # the results themselves are intact


@pytest.mark.slow
def test_attest_with_nothing_saved_says_so(pytester: pytest.Pytester):
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-models=tiny-qwen2", "--tee-attest")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--tee-attest collected nothing: no results were saved*"])
