"""Faults of a serving engine, each a clear error or a counted failure, with the session's other results kept:
server down before the run, killed mid-run, slow to first byte, HTTP 500, malformed SSE, fewer tokens than asked.

A small loopback server written for these tests (tests/fakes/openai_server.py) misbehaves on request; the kill
is done to llama-cpp-python's real server.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from pytest_tee.serving.client import Timeouts
from pytest_tee.serving.load import LoadShape, run_level
from pytest_tee.serving.server import ServerError, connect
from tests.fakes.openai_server import FakeOpenAIServer

pytest.importorskip("httpx", reason="the openai engine is installed with pytest-tee[server]")


@pytest.mark.parametrize(
    ("behaviour", "kind", "message"),
    [
        ("http500", "http", "HTTP 500 from /v1/completions: the engine fell over"),
        ("malformed", "malformed", "a streamed event is not JSON (17 bytes)"),
        ("short", "short", "the server returned 6 tokens, expected exactly 8 (finish_reason length)"),
        ("die", "closed", "the stream ended without [DONE] after 3 tokens"),
        ("slow", "timeout", "no data for 0.3 s (first byte or between chunks)"),
    ],
)
def test_every_failed_request_is_counted_by_kind(behaviour: str, kind: str, message: str):
    with FakeOpenAIServer("ok", delay_s=1.0) as fake:
        server = connect(fake.url, timeouts=Timeouts(connect_s=2.0, read_s=0.3, total_s=5.0))
        prompt = server.make_prompt(12, variants=2)  # built while the server still behaves
        fake.behaviour = behaviour
        level = run_level(server, prompt, 8, LoadShape(concurrency=2, requests=4))
    assert len(level.records) == 4  # nothing dropped
    assert level.errors_by_kind() == {kind: 4}
    assert level.summary()["error_messages"][kind] == message
    metrics = level.metrics()
    assert metrics["error_rate"] == 1.0
    assert metrics["output_tps"] == 0.0
    assert "ttft_p50_s" not in metrics  # no completed request: no latency percentiles invented


def test_a_well_behaved_fake_takes_token_ids_and_counts_exactly():
    with FakeOpenAIServer("ok") as fake:
        server = connect(fake.url)
        prompt = server.make_prompt(12, variants=3)
        assert prompt.source == "token-ids"
        assert server.prompt_format == "token-ids"
        assert len({tuple(prompt.payload(i)) for i in range(3)}) == 3  # distinct variants: no prefix-cache hits
        level = run_level(server, prompt, 8, LoadShape(concurrency=2, requests=4))
    assert level.errors_by_kind() == {}
    assert all(r.output_tokens == 8 and r.prompt_tokens == 12 and r.completion_tokens == 8 for r in level.records)


def test_server_down_before_the_run_is_a_clear_error():
    with FakeOpenAIServer() as fake:
        url = fake.url
    with pytest.raises(ServerError, match=r"no OpenAI-compatible server answers at http://127.0.0.1:\d+ .*start it"):
        connect(url, timeouts=Timeouts(connect_s=1.0))


SESSION = """
def test_gen(tokens_per_second):
    tokens_per_second(prompt_tokens=12, new_tokens=4)

def test_load(tee_load):
    tee_load(concurrency=2, requests=4, prompt_tokens=12, new_tokens=4)
"""


def _session(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(SESSION)
    return pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--tee-models=tiny-qwen2",
        "--tee-engine=transformers,openai",
        "--tee-dtype=float32",
        f"--tee-endpoint={url}",
        "--tee-rounds=2",
        "--tee-warmup=0",
        "--benchmark-json=out.json",
        "-rs",
        *args,
    )


def test_http_500_fails_the_serving_tests_clearly_and_keeps_the_other_results(pytester: pytest.Pytester):
    with FakeOpenAIServer("ok") as fake:
        # The server answers /v1/models and builds prompts, then its completions fail.
        original = fake.behaviour

        class Flip(threading.Thread):
            def run(self) -> None:
                while fake.requests < 2:  # the token-id prompt probes (one per variant shape check)
                    time.sleep(0.01)
                fake.behaviour = "http500"

        Flip(daemon=True).start()
        result = _session(pytester, fake.url)
        assert original == "ok"
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, result.stdout.str()  # test_gen[transformers]
    assert outcomes.get("failed") == 2
    assert outcomes.get("skipped") == 1  # tee_load with the transformers engine
    result.stdout.fnmatch_lines(["*request to http://127.0.0.1:*failed (http): HTTP 500 from /v1/completions*"])
    result.stdout.fnmatch_lines(["*tee_load: 8 of 8 requests failed (results recorded with the failures counted)*"])
    stored = {
        b["name"]: b["extra_info"]["tee"] for b in json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    }
    assert "test_gen[cpu-tiny-qwen2-transformers]" in stored
    load = stored["test_load[cpu-tiny-qwen2-openai]"]
    assert [level["errors"] for level in load["load"]["levels"]] == [{"http": 4}, {"http": 4}]
    assert load["metrics"]["error_rate"]["median"] == 1.0


def test_server_down_fails_the_serving_tests_clearly_and_the_rest_runs(pytester: pytest.Pytester):
    with FakeOpenAIServer() as fake:
        url = fake.url
    result = _session(pytester, url)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, result.stdout.str()
    assert outcomes.get("failed") == 2
    result.stdout.fnmatch_lines(["*--tee-endpoint: no OpenAI-compatible server answers at http://127.0.0.1:*"])


def test_slow_first_byte_beyond_the_timeout_is_counted(pytester: pytest.Pytester):
    with FakeOpenAIServer("ok", delay_s=2.0) as fake:

        def slow_after_probes() -> None:
            while fake.requests < 2:
                time.sleep(0.01)
            fake.behaviour = "slow"

        threading.Thread(target=slow_after_probes, daemon=True).start()
        result = _session(pytester, fake.url, "--tee-request-timeout=0.5", "-k", "test_load")
    result.stdout.fnmatch_lines(["*tee_load: 8 of 8 requests failed*timeout ×8: no data for 0.5 s*"])


def test_killed_mid_run_counts_the_requests_it_took_down(tmp_path):
    pytest.importorskip("llama_cpp.server", reason="the test server is installed with pytest-tee[llama-server]")
    from pytest_tee.checkpoints.catalogue import get
    from pytest_tee.checkpoints.gguf_synthetic import synthetic_gguf
    from tests.fakes.llama_server import LlamaServer

    built = synthetic_gguf(get("tiny-qwen2"), "Q8_0", root=tmp_path)
    with LlamaServer(built.path) as llama:
        server = connect(llama.url, timeouts=Timeouts(connect_s=1.0, read_s=5.0, total_s=20.0))
        prompt = server.make_prompt(16, variants=2)
        killer = threading.Timer(0.4, llama.kill)
        killer.start()
        level = run_level(server, prompt, 200, LoadShape(concurrency=2, requests=8))
        killer.join()
    assert len(level.records) == 8
    kinds = level.errors_by_kind()
    assert sum(kinds.values()) >= 6  # the two in flight when it died, and every one after
    assert set(kinds) <= {"closed", "connect"}
    assert level.metrics()["error_rate"] >= 0.75
