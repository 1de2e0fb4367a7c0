"""The example benchmarks in docs/examples run as documented and store what the docs say they store."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
# A machine without a TEE, whatever runs the tests: the examples' tee_env/tee_requires markers then always apply.
PLAIN_VM = Path(__file__).resolve().parent / "sysroots" / "plain-vm"
FAST = ("-p", "no:cacheprovider", "--tee-models=tiny-qwen2", "--tee-rounds=2", "--tee-warmup=0")


def saved_runs(root: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((root / ".benchmarks").glob("*/0*.json"))]


@pytest.mark.slow
def test_my_benchmark_example_passes_and_stores_each_prompt_shape(pytester: pytest.Pytester):
    pytester.makepyfile(test_my_benchmark=(EXAMPLES / "test_my_benchmark.py").read_text())

    result = pytester.runpytest_inprocess(
        *FAST, "--tee-dtype=float32", f"--tee-sysroot={PLAIN_VM}", "--benchmark-autosave"
    )

    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    (run,) = saved_runs(pytester.path)
    stored = [bench["extra_info"]["tee"] for bench in run["benchmarks"]]
    records = {record["workload"]["prompt_tokens"]: record for record in stored}
    assert sorted(records) == [96, 384]
    for record in records.values():
        assert record["execution_env"] == "cpu"
        assert record["checkpoint"]["id"] == "tiny-qwen2"
        assert record["workload"]["new_tokens"] == 24
        assert record["rounds"] == 2
        assert len(record["samples"]["decode_tps"]) == 2


def test_my_benchmark_example_is_skipped_where_the_memory_marker_is_not_met(pytester: pytest.Pytester):
    """tee_requires(min_memory_gb=4) against a sysroot whose meminfo says 2 GiB: skipped with the reason."""
    small = pytester.mkdir("small-vm")
    (small / "proc").mkdir()
    (small / "proc" / "meminfo").write_text("MemTotal:        2097152 kB\nMemAvailable:    1048576 kB\n")
    pytester.makepyfile(test_my_benchmark=(EXAMPLES / "test_my_benchmark.py").read_text())

    result = pytester.runpytest_inprocess(*FAST, f"--tee-sysroot={small}", "-rs")

    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*requires 4 GiB of memory (have 2.0 GiB)*"])


# ----------------------------------------------------------------------------------------------------------------
# The custom loader: the conftest's adapter against a stand-in for llama.cpp's server.


class StandInLlamaServer(BaseHTTPRequestHandler):
    """Answers POST /completion like llama.cpp's server with stream=true: one event per token, then a stop event."""

    requests: list[dict] = []  # noqa: RUF012 (shared on purpose: the test reads what the server was asked)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for index in range(body["n_predict"]):
            self.wfile.write(b"data: " + json.dumps({"content": f"t{index}", "stop": False}).encode() + b"\n\n")
        self.wfile.write(b'data: {"content": "", "stop": true}\n\n')

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def llama_server() -> Iterator[str]:
    StandInLlamaServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInLlamaServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_custom_loader_example_measures_through_the_streaming_adapter(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, llama_server: str
):
    example = EXAMPLES / "custom_loader"
    pytester.makeconftest((example / "conftest.py").read_text())
    pytester.makepyfile(test_served_model=(example / "test_served_model.py").read_text())
    monkeypatch.setenv("LLAMA_SERVER_URL", llama_server)
    monkeypatch.setenv("LLAMA_SERVER_QUANT", "q8_0")

    result = pytester.runpytest_inprocess(*FAST, f"--tee-sysroot={PLAIN_VM}", "--benchmark-json=out.json")

    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    record = bench["extra_info"]["tee"]
    assert record["placement"] == {"strategy": "llama.cpp server", "url": llama_server}
    assert record["dtype"] == "q8_0"
    assert record["weights"] == "real"
    assert record["workload"]["prompt_tokens"] == 128
    assert len(record["samples"]["decode_tps"]) == 2
    # What the server was asked: the prompt as token ids, exactly N greedy tokens, no prompt cache, streamed.
    assert len(StandInLlamaServer.requests) == 2
    for request in StandInLlamaServer.requests:
        assert request["path"] == "/completion"
        assert len(request["prompt"]) == 128
        assert all(isinstance(token, int) for token in request["prompt"])
        assert (request["n_predict"], request["ignore_eos"], request["cache_prompt"], request["stream"]) == (
            32,
            True,
            False,
            True,
        )
        assert request["temperature"] == 0


@pytest.mark.slow
def test_custom_loader_example_leaves_loading_to_pytest_tee_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    example = EXAMPLES / "custom_loader"
    pytester.makeconftest((example / "conftest.py").read_text())
    pytester.makepyfile(test_served_model=(example / "test_served_model.py").read_text())
    monkeypatch.delenv("LLAMA_SERVER_URL", raising=False)

    result = pytester.runpytest_inprocess(
        *FAST, "--tee-dtype=float32", f"--tee-sysroot={PLAIN_VM}", "--benchmark-json=out.json"
    )

    assert result.ret == 0, result.stdout.str()
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert bench["extra_info"]["tee"]["weights"] == "synthetic"
    assert bench["extra_info"]["tee"]["placement"]["strategy"] != "llama.cpp server"


@pytest.mark.slow
def test_custom_loader_round_with_a_short_stream_fails_instead_of_measuring(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """A server that stops early measured a different workload: the round is an error, not a number."""
    example = EXAMPLES / "custom_loader"
    pytester.makeconftest(
        (example / "conftest.py").read_text()
        + "\n\ndef llama_server_stream(url):\n    return lambda prompt_ids, max_tokens: iter(range(max_tokens - 1))\n"
    )
    pytester.makepyfile(test_served_model=(example / "test_served_model.py").read_text())
    monkeypatch.setenv("LLAMA_SERVER_URL", "http://unused")

    result = pytester.runpytest_inprocess(*FAST, f"--tee-sysroot={PLAIN_VM}")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*generate produced 31 decoding steps, expected exactly 32*"])


def test_writing_benchmarks_page_shows_the_example_files_as_they_are():
    """The code on the page is the code that runs above: copied verbatim, never paraphrased."""
    page = (DOCS / "writing-benchmarks.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    assert blocks[0] == (EXAMPLES / "test_my_benchmark.py").read_text(encoding="utf-8")
    conftest = (EXAMPLES / "custom_loader" / "conftest.py").read_text(encoding="utf-8")
    excerpts = [block for block in blocks if block.startswith(("class StreamingAdapter", "def pytest_tee_generate"))]
    assert len(excerpts) == 2
    for excerpt in excerpts:
        assert excerpt in conftest
