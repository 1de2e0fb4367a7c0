"""The openai engine against a real server: llama-cpp-python's OpenAI-compatible server on loopback with a tiny
synthetic GGUF, started here, measured at concurrency 1 and 4, stopped at the end. Nothing is mocked at HTTP level.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.prompts import BUILTIN_TEXTS
from pytest_tee.measure.metrics import METRICS

pytest.importorskip("httpx", reason="the openai engine is installed with pytest-tee[server]")
pytest.importorskip("llama_cpp.server", reason="the test server is installed with pytest-tee[llama-server]")
pytest.importorskip("gguf", reason="the gguf package is installed with pytest-tee[llama]")

from tests.fakes.llama_server import LlamaServer, exact_n_bias

TINY = get("tiny-qwen2")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    from pytest_tee.checkpoints.gguf_synthetic import synthetic_gguf

    root = tmp_path_factory.mktemp("serving")
    built = synthetic_gguf(TINY, "Q8_0", root=root)
    with LlamaServer(built.path) as running:
        running.extra = json.dumps({"logit_bias": exact_n_bias(built.path)})  # see exact_n_bias
        yield running


def run(pytester: pytest.Pytester, server: LlamaServer, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--tee-models=tiny-qwen2",
        "--tee-engine=openai",
        f"--tee-endpoint={server.url}/v1",
        f"--tee-request-extra={server.extra}",
        "--tee-rounds=3",
        "--tee-warmup=1",
        *args,
    )


def key_of(tee: dict) -> dict:
    return tee["comparison_key"]["engine_settings"]


def records(pytester: pytest.Pytester, name: str = "out.json") -> list[dict]:
    return [b["extra_info"]["tee"] for b in json.loads((pytester.path / name).read_text())["benchmarks"]]


ROUNDS = """
def test_gen(tokens_per_second):
    result = tokens_per_second(prompt_tokens=24, new_tokens=12)
    assert result.rounds == 3
    assert result["decode_tps"].median > 0
"""


def test_single_request_rounds_through_tokens_per_second(pytester: pytest.Pytester, server: LlamaServer):
    pytester.makepyfile(ROUNDS)
    result = run(pytester, server, "--benchmark-json=out.json", "-v")
    assert result.ret == 0, result.stdout.str()
    (tee,) = records(pytester)
    assert tee["engine"]["name"] == "openai"
    assert tee["engine"]["build"]["server"]["kind"] == "llama-cpp-python"
    assert tee["engine"]["build"]["server"]["model"] == "tiny-qwen2"
    assert tee["engine"]["settings"]["prompt_format"] == "text"  # llama-cpp-python takes no token ids
    assert tee["engine"]["settings"]["exact_tokens"].startswith("logit_bias from --tee-request-extra")
    assert key_of(tee)["request_extra"]["logit_bias"]["1"] == -100.0  # what was asked is part of the key
    # The server's own count confirmed the prompt length before the rounds; the rounds checked it again.
    assert tee["workload"]["prompt_tokens"] == 24
    assert tee["workload"]["prompt_source"] == "calibrated-text"
    assert tee["workload"]["new_tokens"] == 12
    for name in ("decode_tps", "e2e_tps", "ttft_s", "itl_p50_ms"):
        assert tee["metrics"][name]["n"] == 3
        assert tee["metrics"][name]["higher_is_better"] == METRICS[name].higher_is_better
    assert "peak_rss_mib" not in tee["metrics"]  # the client's memory says nothing about the server's
    assert tee["serving"]["location"] == "local"
    assert tee["serving"]["host"] == "127.0.0.1"
    assert tee["execution_env"] == "cpu"
    key = tee["comparison_key"]
    assert key["engine"] == "openai"
    assert key["engine_settings"]["server_kind"] == "llama-cpp-python"
    assert key["engine_settings"]["location"] == "local"
    stored = (pytester.path / "out.json").read_text()
    assert not any(word in stored for word in ("sediment", "gluten", "piano", BUILTIN_TEXTS[0][:40]))


LOAD = """
import pytest
from pytest_tee.serving.load import sweep

@pytest.mark.parametrize("shape", sweep(concurrency=(1, 4), requests=4))
def test_load(tee_load, shape):
    result = tee_load(shape=shape, prompt_tokens=16, new_tokens=8)
    assert result.failed == 0
    assert result.sent == result.rounds * 4
"""


def test_load_levels_at_concurrency_1_and_4_are_stored_with_direction(pytester: pytest.Pytester, server: LlamaServer):
    pytester.makepyfile(LOAD)
    result = run(pytester, server, "--tee-rounds=2", "--tee-warmup=1", "--benchmark-json=out.json", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_load[[]cpu-tiny-qwen2-c1[]]*", "*test_load[[]cpu-tiny-qwen2-c4[]]*"])
    stored = {tee["load"]["shape"]["concurrency"]: tee for tee in records(pytester)}
    assert set(stored) == {1, 4}
    for concurrency, tee in stored.items():
        for name in ("output_tps", "request_rate", "ttft_p50_s", "ttft_p99_s", "itl_p99_ms", "e2e_p99_s", "error_rate"):
            summary = tee["metrics"][name]
            assert summary["n"] == 2
            assert summary["higher_is_better"] == METRICS[name].higher_is_better
        assert tee["metrics"]["error_rate"]["median"] == 0
        for level in tee["load"]["levels"]:
            assert (level["sent"], level["completed"], level["failed"]) == (4, 4, 0)
            assert level["output_tokens"] == 4 * 8
        assert len(tee["load"]["warmup_levels"]) == 1
        assert tee["comparison_key"]["engine_settings"]["load"] == {"requests": 4, "concurrency": concurrency}
    # Four requests in flight on one server slot queue behind each other: the first token waits longer.
    assert stored[4]["metrics"]["ttft_p90_s"]["median"] > stored[1]["metrics"]["ttft_p90_s"]["median"]


POISSON = """
def test_rate(tee_load):
    result = tee_load(rate=20.0, requests=6, prompt_tokens=16, new_tokens=8)
    assert result.sent == 6
"""


def test_poisson_arrivals(pytester: pytest.Pytester, server: LlamaServer):
    pytester.makepyfile(POISSON)
    result = run(pytester, server, "--tee-rounds=1", "--tee-warmup=0", "--benchmark-json=out.json")
    assert result.ret == 0, result.stdout.str()
    (tee,) = records(pytester)
    assert tee["load"]["shape"] == {"requests": 6, "rate": 20.0, "arrivals": "poisson", "seed": 0}
    assert tee["load"]["levels"][0]["completed"] == 6


def test_load_gate_compares_stored_levels(pytester: pytest.Pytester, server: LlamaServer):
    """Saved with --benchmark-autosave, then gated on output_tps: a verdict per level, the session still exits 0
    or 1 by the gate (never an error)."""
    pytester.makepyfile(LOAD)
    first = run(pytester, server, "--tee-rounds=3", "--tee-warmup=0", "--benchmark-autosave")
    assert first.ret == 0, first.stdout.str()
    second = run(
        pytester,
        server,
        "--tee-rounds=3",
        "--tee-warmup=0",
        "--tee-compare=latest",
        "--tee-fail-drop=output_tps:50%",
        "--tee-verdicts=verdicts.json",
    )
    assert second.ret in (0, 1), second.stdout.str()
    verdicts = json.loads((pytester.path / "verdicts.json").read_text())
    text = json.dumps(verdicts)
    assert "output_tps" in text
    assert "test_load[cpu-tiny-qwen2-c1]" in text
    assert "test_load[cpu-tiny-qwen2-c4]" in text


def test_report_lists_serving_levels_beside_the_rounds_never_ratioed(
    pytester: pytest.Pytester, server: LlamaServer, capsys: pytest.CaptureFixture[str]
):
    from pytest_tee.cli import main

    pytester.makepyfile(test_rounds=ROUNDS, test_levels=LOAD)
    result = run(pytester, server, "--tee-rounds=3", "--tee-warmup=0", "--benchmark-save=serving")
    assert result.ret == 0, result.stdout.str()
    capsys.readouterr()
    assert main(["report", str(pytester.path / ".benchmarks"), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (row,) = document["rows"]  # the single-request rounds: one row of their own engine
    assert row["engine"] == "openai"
    assert {level["shape"]["concurrency"] for level in document["serving_levels"]} == {1, 4}
    assert all(level["metrics"]["output_tps"]["median"] > 0 for level in document["serving_levels"])
    assert main(["report", str(pytester.path / ".benchmarks")]) == 0
    text = capsys.readouterr().out
    assert "Serving under load (tee_load levels; beside the rows above, never ratioed against them)" in text
    assert "llama-cpp-python tiny-qwen2" in text
