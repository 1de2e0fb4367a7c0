"""One streamed completion request, read as server-sent events and stamped per token; no I/O in this module.

The drivers (``serving.client``) feed lines of the HTTP body to a :class:`StreamTally` with the clock reading at
which each line arrived; the tally turns them into one :class:`RequestRecord`: when the request was sent, one
timestamp per output token, the end, the server's ``usage`` block and what went wrong, if anything.

How many tokens a chunk carries, best source first:

1. ``usage.completion_tokens`` in every chunk (vLLM's ``continuous_usage_stats``): the difference to the
   previous chunk;
2. per-token logprobs in the chunk (``choices[0].logprobs.tokens`` for completions, ``.content`` for chat);
3. otherwise one token per chunk that carries generated text (how llama.cpp, llama-cpp-python, SGLang and TGI
   stream by default).

A chunk carrying k tokens stamps all k at its arrival: that is when they became available to the caller. The
count is checked against the final ``usage.completion_tokens`` when the server sends one. Nothing of the prompt
or the generated text is kept: a chunk's text is only looked at to see whether it is there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What went wrong with a request, as counted in a load level's errors.
ERROR_KINDS = ("connect", "timeout", "http", "malformed", "short", "closed", "server")


@dataclass(frozen=True)
class RequestRecord:
    """One request: clock readings (seconds, any monotonic origin), counts, and the error if it failed."""

    sent: float
    token_times: tuple[float, ...]
    end: float
    chunks: int = 0
    prompt_tokens: int | None = None  # the server's usage.prompt_tokens
    completion_tokens: int | None = None  # the server's usage.completion_tokens
    finish_reason: str | None = None
    server_timings: Mapping[str, float] = field(default_factory=dict)  # e.g. llama.cpp's "timings" block
    merged_tokens: int = 0  # tokens the stream delivered inside another token's chunk, position unknown
    error: str | None = None
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def output_tokens(self) -> int:
        return len(self.token_times)

    @property
    def ttft_s(self) -> float | None:
        return self.token_times[0] - self.sent if self.token_times else None

    @property
    def e2e_s(self) -> float:
        return self.end - self.sent

    def gaps_s(self) -> list[float]:
        """Inter-token latencies; tokens that arrived in one chunk have a gap of 0."""
        stamps = self.token_times
        return [b - a for a, b in itertools.pairwise(stamps)]

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for stored results (relative to ``sent``; no text)."""
        return {
            "ok": self.ok,
            "ttft_s": self.ttft_s,
            "e2e_s": self.e2e_s,
            "output_tokens": self.output_tokens,
            "chunks": self.chunks,
            "merged_tokens": self.merged_tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "error_kind": self.error_kind,
            "error": self.error,
        }


class SSEParser:
    """Server-sent events, line by line: returns an event's data when a blank line ends it (comments skipped)."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None  # event:, id:, retry: carry nothing we use

    def flush(self) -> str | None:
        """An event left without its closing blank line when the body ended."""
        return self.feed("")


class StreamError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class StreamTally:
    """Stamps and counts for one streamed request; :meth:`finish` makes the record."""

    def __init__(self, sent: float, expected_tokens: int | None) -> None:
        self.sent = sent
        self.expected = expected_tokens
        self.stamps: list[float] = []
        self.chunks = 0
        self.done = False
        self._parser = SSEParser()
        self._usage_seen = 0  # completion_tokens of the last chunk with continuous usage
        self._usage: Mapping[str, Any] | None = None
        self._finish_reason: str | None = None
        self._timings: dict[str, float] = {}
        self.merged = 0

    def line(self, text: str, now: float) -> None:
        """One line of the body, read at clock ``now``."""
        data = self._parser.feed(text)
        if data is not None:
            self.event(data, now)

    def body_ended(self, now: float) -> None:
        """The body ended: an event left without its closing blank line still counts."""
        data = self._parser.flush()
        if data is not None:
            self.event(data, now)

    def event(self, data: str, now: float) -> None:
        if self.done:
            return
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise StreamError("malformed", f"a streamed event is not JSON ({len(data)} bytes)") from None
        if not isinstance(chunk, dict):
            raise StreamError("malformed", f"a streamed event is JSON {type(chunk).__name__}, not an object")
        if "error" in chunk:
            raise StreamError("server", f"the server reported an error mid-stream: {_error_text(chunk['error'])}")
        self.chunks += 1
        self.stamps.extend([now] * self._tokens_in(chunk))
        timings = chunk.get("timings")
        if isinstance(timings, dict):
            self._timings = {k: float(v) for k, v in timings.items() if isinstance(v, (int, float))}

    def _tokens_in(self, chunk: Mapping[str, Any]) -> int:
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise StreamError("malformed", "a streamed chunk has no choices list")
        choice = choices[0] if choices else None
        if choice is not None and not isinstance(choice, dict):
            raise StreamError("malformed", "a streamed chunk's choice is not an object")
        if choice is not None and choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
        if isinstance(usage, dict):
            self._usage = usage
            count = usage.get("completion_tokens")
            if isinstance(count, int) and choice is not None:  # continuous usage: the difference is this chunk's
                added, self._usage_seen = count - self._usage_seen, count
                return max(added, 0)
        if choice is None:  # the final usage-only chunk (stream_options.include_usage)
            return 0
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            for key in ("tokens", "content"):
                if isinstance(logprobs.get(key), list):
                    return len(logprobs[key])
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if not isinstance(text, str):
            return 0
        # An empty text is a token that prints nothing, except in the closing chunk that only says why it stopped.
        return 1 if text or not choice.get("finish_reason") else 0

    def finish(self, now: float, error: StreamError | None = None) -> RequestRecord:
        usage = self._usage or {}
        prompt = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
        completion = usage.get("completion_tokens") if isinstance(usage.get("completion_tokens"), int) else None
        if error is None:
            error = self._check(completion)
        return RequestRecord(
            sent=self.sent,
            token_times=tuple(self.stamps),
            end=now,
            chunks=self.chunks,
            prompt_tokens=prompt,
            completion_tokens=completion,
            finish_reason=self._finish_reason,
            server_timings=self._timings,
            merged_tokens=self.merged,
            error=None if error is None else str(error),
            error_kind=None if error is None else error.kind,
        )

    def _check(self, completion: int | None) -> StreamError | None:
        counted = len(self.stamps)
        if not self.done:
            return StreamError("closed", f"the stream ended without [DONE] after {counted} tokens")
        total = completion
        if total is None and self._finish_reason == "length" and self.expected is not None:
            total = self.expected  # "length": max_tokens (= N) were generated, however the chunks grouped them
        if total is not None and total < counted:
            said = "usage reports" if completion is not None else "finish_reason 'length' means max_tokens ="
            return StreamError("malformed", f"the stream carried {counted} token chunks but {said} {total}")
        if total is not None and total > counted and counted:
            # Tokens the server held back (an incomplete UTF-8 character) arrive merged into one chunk without
            # saying which: they are counted at the last chunk, and the number is recorded (merged_tokens).
            self.merged = total - counted
            self.stamps.extend([self.stamps[-1]] * self.merged)
            counted = total
        if self.expected is not None and counted != self.expected:
            why = f" (finish_reason {self._finish_reason})" if self._finish_reason else ""
            return StreamError("short", f"the server returned {counted} tokens, expected exactly {self.expected}{why}")
        return None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:300]
    return str(error)[:300]


__all__ = ["ERROR_KINDS", "RequestRecord", "SSEParser", "StreamError", "StreamTally"]
