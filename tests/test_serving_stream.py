"""Reading a streamed completion: SSE framing, tokens per chunk from each server's conventions, the count check,
load-level arithmetic, endpoint parsing and the request bodies each server gets. No I/O here."""

from __future__ import annotations

import json

import pytest

from pytest_tee.serving.dialects import dialect_for
from pytest_tee.serving.endpoint import EndpointError, describe_server, parse_endpoint
from pytest_tee.serving.load import LoadShape, LoadShapeError, level_metrics
from pytest_tee.serving.stream import RequestRecord, SSEParser, StreamError, StreamTally


def feed(tally: StreamTally, events: list[object], start: float = 1.0, step: float = 0.1) -> None:
    now = start
    for event in events:
        now += step
        text = event if isinstance(event, str) else json.dumps(event)
        tally.line(f"data: {text}", now)
        tally.line("", now)


def text_chunk(text: str = "x", finish: str | None = None, **extra: object) -> dict:
    return {"choices": [{"index": 0, "text": text, "finish_reason": finish, **extra}]}


def test_sse_parser_joins_data_lines_and_skips_comments_and_other_fields():
    parser = SSEParser()
    assert parser.feed(": ping") is None
    assert parser.feed("event: message") is None
    assert parser.feed('data: {"a":') is None
    assert parser.feed("data:1}") is None
    assert parser.feed("") == '{"a":\n1}'
    assert parser.feed("") is None
    assert parser.feed("data: [DONE]") is None
    assert parser.flush() == "[DONE]"


def test_one_token_per_text_chunk_and_the_closing_chunk_counts_none():
    tally = StreamTally(sent=1.0, expected_tokens=3)
    feed(tally, [text_chunk("a"), text_chunk(""), text_chunk("c"), text_chunk("", "length"), "[DONE]"])
    record = tally.finish(2.0)
    assert record.ok, record.error
    assert record.token_times == pytest.approx((1.1, 1.2, 1.3))
    assert record.ttft_s == pytest.approx(0.1)
    assert record.chunks == 4


def test_continuous_usage_gives_tokens_per_chunk_and_logprobs_too():
    usage = StreamTally(sent=0.0, expected_tokens=4)
    feed(
        usage,
        [
            {**text_chunk("ab"), "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
            {**text_chunk("cd", "length"), "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
            {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
            "[DONE]",
        ],
        start=0.0,
    )
    record = usage.finish(1.0)
    assert record.ok, record.error
    assert record.token_times == pytest.approx((0.1, 0.1, 0.2, 0.2))
    assert (record.prompt_tokens, record.completion_tokens) == (5, 4)
    logprobs = StreamTally(sent=0.0, expected_tokens=3)
    feed(logprobs, [text_chunk("ab", logprobs={"tokens": ["a", "b"]}), text_chunk("c", logprobs={"tokens": ["c"]})])
    feed(logprobs, ["[DONE]"])
    assert logprobs.finish(1.0).output_tokens == 3


def test_chat_deltas_are_read_like_completions():
    tally = StreamTally(sent=0.0, expected_tokens=2)
    feed(tally, [{"choices": [{"delta": {"content": "h"}}]}, {"choices": [{"delta": {"content": "i"}}]}, "[DONE]"])
    assert tally.finish(1.0).ok


def test_held_back_tokens_are_counted_at_their_chunk_when_the_total_is_known():
    """llama-cpp-python holds back incomplete UTF-8 and sends several tokens in one chunk, without usage; with
    finish_reason "length" and max_tokens = N the total is N, so the missing stamps go to the last chunk."""
    tally = StreamTally(sent=0.0, expected_tokens=4)
    feed(tally, [text_chunk("a"), text_chunk("é"), text_chunk("", "length"), "[DONE]"], start=0.0)
    record = tally.finish(1.0)
    assert record.ok, record.error
    assert record.merged_tokens == 2
    assert record.token_times == pytest.approx((0.1, 0.2, 0.2, 0.2))


@pytest.mark.parametrize(
    ("events", "kind", "text"),
    [
        ([text_chunk("a")], "closed", "without [DONE] after 1 tokens"),
        ([text_chunk("a"), text_chunk("b", "stop"), "[DONE]"], "short", "returned 2 tokens, expected exactly 3"),
        (
            [text_chunk(), text_chunk(), text_chunk(), text_chunk(), text_chunk("", "length"), "[DONE]"],
            "malformed",
            "4 token chunks but finish_reason 'length' means max_tokens = 3",
        ),
        (
            [text_chunk(), {"choices": [], "usage": {"completion_tokens": 1}}, "[DONE]"],
            "short",
            "returned 1 tokens",
        ),
    ],
)
def test_a_wrong_count_is_an_error_of_its_kind(events: list[object], kind: str, text: str):
    tally = StreamTally(sent=0.0, expected_tokens=3)
    feed(tally, events)
    record = tally.finish(1.0)
    assert record.error_kind == kind
    assert text in str(record.error)


@pytest.mark.parametrize(
    ("event", "kind"),
    [("{not json", "malformed"), ("[1, 2]", "malformed"), ('{"error": {"message": "overloaded"}}', "server")],
)
def test_bad_events_raise_a_stream_error(event: str, kind: str):
    tally = StreamTally(sent=0.0, expected_tokens=3)
    with pytest.raises(StreamError) as caught:
        feed(tally, [event])
    assert caught.value.kind == kind


def record(sent: float, stamps: tuple[float, ...], end: float, error: str | None = None) -> RequestRecord:
    return RequestRecord(sent, stamps, end, error=error, error_kind="http" if error else None)


def test_level_metrics_count_failures_and_use_the_wall_time():
    records = [
        record(0.0, (0.1, 0.2, 0.3), 0.3),
        record(0.1, (0.3, 0.4, 0.6), 0.6),
        record(0.2, (), 1.0, error="HTTP 500"),
    ]
    values = level_metrics(records)
    assert values["error_rate"] == pytest.approx(1 / 3)
    assert values["output_tps"] == pytest.approx(6 / 1.0)  # completed tokens over first send → last answer
    assert values["request_rate"] == pytest.approx(2.0)
    assert values["ttft_p50_s"] == pytest.approx(0.15)
    assert values["itl_p50_ms"] == pytest.approx(100.0)
    assert values["e2e_p99_s"] == pytest.approx(0.5, abs=0.01)


def test_load_shapes_validate_their_arguments_and_poisson_arrivals_repeat():
    with pytest.raises(LoadShapeError, match="exactly one of concurrency"):
        LoadShape()
    with pytest.raises(LoadShapeError, match="exactly one of concurrency"):
        LoadShape(concurrency=2, rate=1.0)
    with pytest.raises(LoadShapeError, match="concurrency=0"):
        LoadShape(concurrency=0)
    with pytest.raises(LoadShapeError, match="rate=-1"):
        LoadShape(rate=-1)
    assert LoadShape(concurrency=4).total == 16
    offsets = LoadShape(rate=2.0, requests=200).send_offsets()
    assert offsets == LoadShape(rate=2.0, requests=200).send_offsets()
    assert offsets is not None
    assert offsets[0] == 0.0
    assert 70 < offsets[-1] < 130  # 199 gaps of mean 0.5 s


def test_endpoints_local_or_remote_and_bad_urls_named():
    local = parse_endpoint("http://127.0.0.1:8000/v1/")
    assert (local.base_url, local.location) == ("http://127.0.0.1:8000", "local")
    assert parse_endpoint("http://localhost:11434").local
    remote = parse_endpoint("https://gpu-cvm.example.org/serving")
    assert (remote.base_url, remote.location, remote.host, remote.port) == (
        "https://gpu-cvm.example.org:443/serving",
        "remote",
        "gpu-cvm.example.org",
        443,
    )
    assert remote.to_dict() == {"location": "remote", "host": "gpu-cvm.example.org", "port": 443}
    for bad, message in (
        ("127.0.0.1:8000", r"not an http\(s\) URL"),
        ("http://user:secret@host:8000", "API key in an environment variable"),
        ("http://host:99999", "port"),
    ):
        with pytest.raises(EndpointError, match=message):
            parse_endpoint(bad)


def test_server_kind_from_models_list_and_a_model_must_be_served():
    models = {"data": [{"id": "deepseek-r1-7b", "owned_by": "vllm", "max_model_len": 4096}]}
    info = describe_server(models, None, "auto")
    assert (info.kind, info.model, info.facts) == ("vllm", "deepseek-r1-7b", {"max_model_len": 4096})
    assert describe_server(models, None, "sglang").kind == "sglang"
    with pytest.raises(EndpointError, match="'other' is not served here; the server lists: deepseek-r1-7b"):
        describe_server(models, "other", "auto")
    two = {"data": [{"id": "a"}, {"id": "b"}]}
    with pytest.raises(EndpointError, match="lists 2 models"):
        describe_server(two, None, "auto")


def test_request_bodies_ask_each_server_for_exactly_n_tokens():
    vllm = dialect_for("vllm").body("m", [1, 2], 8)
    assert vllm["ignore_eos"] is True
    assert vllm["min_tokens"] == vllm["max_tokens"] == 8
    assert vllm["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert vllm["temperature"] == 0.0
    llama_cpp_python = dialect_for("llama-cpp-python").body("m", "text", 8)
    assert llama_cpp_python["min_tokens"] == 8
    assert "ignore_eos" not in llama_cpp_python
    assert "stream_options" not in llama_cpp_python
    ollama = dialect_for("ollama").body("m", "text", 8)
    assert "min_tokens" not in ollama
    assert "ignore_eos" not in ollama
    assert dialect_for("something-new").kind == "generic"
