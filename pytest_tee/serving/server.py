"""One OpenAI-compatible server as the ``openai`` engine holds it: its description, prompts of an exact length,
and one streamed request at a time.

Prompts: token ids when the server takes them (vLLM, SGLang, llama.cpp's server), else neutral built-in text
calibrated against the server's own count. Either way the length is confirmed by ``usage.prompt_tokens`` of a
probe request (``max_tokens = 1``, not timed) before any round, so a prompt of N tokens is N tokens as the server
counts them. The prompt lives only in memory for sending; results keep its SHA-256 and token count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_tee.confidential import ConfidentialText
from pytest_tee.serving.client import Timeouts, http_error_text, stream_sync, sync_client
from pytest_tee.serving.dialects import Dialect, dialect_for
from pytest_tee.serving.endpoint import Endpoint, EndpointError, ServerInfo, describe_server, parse_endpoint
from pytest_tee.serving.stream import RequestRecord

_HASH_DOMAIN = b"pytest-tee server prompt v1\n"
_MAX_PROBES = 64  # calibration requests per prompt text, at most
PROMPT_VARIANTS = 8  # distinct prompts taken in turn (defeats prefix caches between successive requests)


class ServerError(RuntimeError):
    """The server is unreachable or answered in a way a benchmark cannot use; the message says which."""


class ServerPromptError(ValueError):
    """A prompt that cannot be built for this server (wrong batch, no exact length); bad test input."""


@dataclass(frozen=True)
class ServerPrompt:
    """Prompts as sent, all of one length confirmed by the server's count: token ids or text (held only here, never
    in a repr). There are several variants that differ from their first token on, taken in turn by successive
    requests, so that a server's prefix cache (vLLM, SGLang, llama.cpp) cannot answer a request from the one before.
    """

    payloads: tuple[list[int] | ConfidentialText, ...] = field(repr=False)
    token_count: int
    sha256: str  # over every variant, in order
    source: str  # "token-ids" | "calibrated-text" | "text"
    batch: int = 1

    def payload(self, index: int) -> list[int] | ConfidentialText:
        return self.payloads[index % len(self.payloads)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.token_count,
            "batch": self.batch,
            "prompt_sha256": self.sha256,
            "prompt_source": self.source,
            "prompt_variants": len(self.payloads),
        }


def prompt_digest(payloads: Sequence[list[int] | str]) -> str:
    digest = hashlib.sha256(_HASH_DOMAIN)
    for payload in payloads:
        if isinstance(payload, str):
            digest.update(b"text\n" + payload.encode("utf-8") + b"\n")
        else:
            digest.update(b"ids\n" + ",".join(str(i) for i in payload).encode() + b"\n")
    return digest.hexdigest()


class Server:
    """A server connection; build it with :func:`connect`. Not thread-safe: one request at a time."""

    def __init__(
        self, endpoint: Endpoint, info: ServerInfo, timeouts: Timeouts, headers: Mapping[str, str], vocab_size: int
    ) -> None:
        self.endpoint = endpoint
        self.info = info
        self.dialect: Dialect = dialect_for(info.kind)
        self.timeouts = timeouts
        self.headers = dict(headers)
        self.vocab_size = vocab_size
        self.prompt_format: str | None = None  # decided by the first prompt: "token-ids" | "text"
        self.probes = 0
        self._client = sync_client(timeouts, headers)
        self._prompts: dict[tuple[int, int, str | None], ServerPrompt] = {}

    @property
    def completions_url(self) -> str:
        return self.endpoint.url("/v1/completions")

    def close(self) -> None:
        self._client.close()

    # ---------------------------------------------------------------------------------------------------- rounds
    def stream(self, prompt: ServerPrompt, new_tokens: int, index: int = 0) -> RequestRecord:
        """One timed request with the prompt's variant ``index`` (the caller reads the clock through the record)."""
        body = self.dialect.body(self.info.model, prompt.payload(index), new_tokens)
        return stream_sync(self._client, self.completions_url, body, expected_tokens=new_tokens, timeouts=self.timeouts)

    def body(self, prompt: ServerPrompt, new_tokens: int, index: int) -> dict[str, Any]:
        return self.dialect.body(self.info.model, prompt.payload(index), new_tokens)

    # --------------------------------------------------------------------------------------------------- prompts
    def make_prompt(
        self, prompt_tokens: int, batch: int = 1, text: str | None = None, variants: int = PROMPT_VARIANTS
    ) -> ServerPrompt:
        """``variants`` prompts of exactly ``prompt_tokens`` tokens as this server counts them (or ``text``)."""
        if batch != 1:
            raise ServerPromptError(
                f"batch={batch}: the openai engine sends one request per round; measure concurrent requests with "
                "the tee_load fixture (tee_load(concurrency=N))"
            )
        key = (prompt_tokens, variants, None if text is None else prompt_digest([text]))
        if key not in self._prompts:
            self._prompts[key] = self._build_prompt(prompt_tokens, text, variants)
        return self._prompts[key]

    def _build_prompt(self, prompt_tokens: int, text: str | None, variants: int) -> ServerPrompt:
        if text is not None:  # the user's own text, as is: one variant
            payload = ConfidentialText(text)
            count = self.count_prompt_tokens(payload)
            return ServerPrompt((payload,), count, prompt_digest([payload]), "text")
        if self.prompt_format in (None, "token-ids"):
            ids = self._id_prompts(prompt_tokens, variants)
            if ids is not None:
                self.prompt_format = "token-ids"
                return ServerPrompt(tuple(ids), prompt_tokens, prompt_digest(ids), "token-ids")
        self.prompt_format = "text"
        texts = self._text_prompts(prompt_tokens, variants)
        return ServerPrompt(tuple(texts), prompt_tokens, prompt_digest(texts), "calibrated-text")

    def _id_prompts(self, prompt_tokens: int, variants: int) -> list[list[int]] | None:
        """Synthetic ids (seed = variant), the length confirmed by the server; None when it takes no token ids."""
        from pytest_tee.checkpoints.prompts import _default_range, _synthetic_rows

        low, high = _default_range(self.vocab_size)
        rows = [_synthetic_rows(low, high, prompt_tokens, 1, seed)[0] for seed in range(variants)]
        try:
            count = self.count_prompt_tokens(rows[0])
        except ServerError as exc:
            if "HTTP " not in str(exc):  # no answer at all: that is not about ids
                raise
            # The server refuses a list of ids (llama-cpp-python answers 500, others 400/422): use text instead.
            return None
        if count != prompt_tokens:  # e.g. a BOS added in front: send that many fewer ids
            extra = count - prompt_tokens
            if extra <= 0 or extra >= prompt_tokens:
                raise ServerError(
                    f"{prompt_tokens} token ids were counted as {count} prompt tokens by the server; "
                    "the length cannot be made exact"
                )
            rows = [row[: prompt_tokens - extra] for row in rows]
        for row in rows[: 1 if count == prompt_tokens else len(rows)]:
            if self.count_prompt_tokens(row) != prompt_tokens:
                raise ServerError(f"the server does not count {len(row)} token ids as {prompt_tokens} prompt tokens")
        return rows

    def _text_prompts(self, prompt_tokens: int, variants: int) -> list[ConfidentialText]:
        from pytest_tee.checkpoints.prompts import BUILTIN_TEXTS

        words = " ".join(BUILTIN_TEXTS).split()
        found: list[ConfidentialText] = []
        guess = max(1, prompt_tokens // 2)
        for variant in range(variants):
            start = (variant * len(words)) // variants  # each variant opens with a different word
            rotated = words[start:] + words[:start]
            text, guess = self._calibrate(rotated, prompt_tokens, guess)
            found.append(text)
        return found

    def _calibrate(self, words: list[str], prompt_tokens: int, guess: int) -> tuple[ConfidentialText, int]:
        """Text of exactly ``prompt_tokens`` tokens from these words (bounded probes); and the word count used."""
        probes_before = self.probes

        def text_of(count: int, tail: str = "") -> str:
            body = " ".join(words[i % len(words)] for i in range(count))
            return f"{body} {tail}" if body and tail else (body or tail)

        def count_of(text: str) -> int:
            if self.probes - probes_before >= _MAX_PROBES:
                raise ServerPromptError(
                    f"no text of exactly {prompt_tokens} tokens found for this server in {_MAX_PROBES} probes; "
                    "choose another prompt_tokens"
                )
            return self.count_prompt_tokens(text) if text else 0

        # The largest word count whose text is at most N tokens: bracket around the guess, then bisect.
        low, high = max(0, guess - 4), guess + 4
        while low > 0 and count_of(text_of(low)) > prompt_tokens:
            low, high = max(0, low - (high - low)), low
        while count_of(text_of(high)) <= prompt_tokens:
            low, high = high, high + (high - low) * 2
        while high - low > 1:
            middle = (low + high) // 2
            if count_of(text_of(middle)) <= prompt_tokens:
                low = middle
            else:
                high = middle
        best = text_of(low)
        if count_of(best) == prompt_tokens:
            return ConfidentialText(best), low
        # Close the gap one character at a time: glued to the last word (byte-level vocabularies add one token per
        # character there), or as a following word.
        nearest: set[int] = set()
        tails = [(best, letters) for letters in ("etaoinshrdlu", "0123456789")]
        tails += [(best + " ", words[(low + offset) % len(words)]) for offset in range(4)]
        for head, letters in tails:
            for end in range(1, len(letters) + 1):
                candidate = head + letters[:end]
                counted = count_of(candidate)
                if counted == prompt_tokens:
                    return ConfidentialText(candidate), low
                nearest.add(counted)
                if counted > prompt_tokens:
                    break
        raise ServerPromptError(
            f"no text of exactly {prompt_tokens} tokens found for this server (nearest counts: "
            f"{sorted(nearest)[:6]}); choose another prompt_tokens"
        )

    def count_prompt_tokens(self, prompt: list[int] | str) -> int:
        """The server's ``usage.prompt_tokens`` for this prompt (one request, one output token, not timed)."""
        import httpx

        self.probes += 1
        body = self.dialect.body(self.info.model, prompt, 1, stream=False)
        try:
            response = self._client.post(self.completions_url, json=body)
        except httpx.HTTPError as exc:
            raise ServerError(
                f"{self.completions_url}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            ) from None
        if response.status_code != 200:
            raise ServerError(http_error_text(response))
        try:
            usage = response.json().get("usage") or {}
        except (ValueError, AttributeError):
            raise ServerError(f"{self.completions_url} did not answer with a JSON completion") from None
        count = usage.get("prompt_tokens")
        if not isinstance(count, int):
            raise ServerError("the server reports no usage.prompt_tokens, so a prompt's length cannot be confirmed")
        return count

    # ------------------------------------------------------------------------------------------------- describe
    def facts(self) -> dict[str, Any]:
        return {
            "server": self.info.to_dict(),
            "endpoint": self.endpoint.to_dict(),
            "exact_tokens": self.dialect.how_exact,
            "prompt_format": self.prompt_format,
            "request_extra": dict(self.dialect.extra),
            "timeouts_s": {
                "connect": self.timeouts.connect_s,
                "read": self.timeouts.read_s,
                "total": self.timeouts.total_s,
            },
        }


def connect(
    endpoint_text: str,
    *,
    served_model: str | None = None,
    kind: str = "auto",
    api_key_env: str = "OPENAI_API_KEY",
    timeouts: Timeouts | None = None,
    vocab_size: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Server:
    """Ask the server what it serves (``/v1/models``); ServerError when it cannot be reached or is not one."""
    import httpx

    endpoint = parse_endpoint(endpoint_text)
    timeouts = timeouts or Timeouts()
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = endpoint.url("/v1/models")
    try:
        with sync_client(timeouts, headers) as client:
            response = client.get(url)
            version = _version(client, endpoint)
    except httpx.HTTPError as exc:
        raise ServerError(
            f"no OpenAI-compatible server answers at {endpoint.base_url} ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:160]}); start it first, or fix --tee-endpoint"
        ) from None
    if response.status_code != 200:
        raise ServerError(f"{endpoint.base_url}: {http_error_text(response)} (is this an OpenAI-compatible server?)")
    try:
        info = describe_server(response.json(), served_model, kind)
    except (ValueError, EndpointError) as exc:
        raise ServerError(f"{endpoint.base_url}: {exc}") from None
    if version is not None:
        info = ServerInfo(info.kind, info.model, info.owned_by, version, info.facts)
    vocab = int(info.facts.get("n_vocab") or vocab_size or 32000)
    server = Server(endpoint, info, timeouts, headers, vocab)
    if extra:
        server.dialect = dataclasses.replace(server.dialect, extra=dict(extra))
    return server


def _version(client: Any, endpoint: Endpoint) -> str | None:
    """vLLM, SGLang and TGI say their version at /version (TGI: /info); others do not."""
    for path, key in (("/version", "version"), ("/info", "version")):
        try:
            response = client.get(endpoint.url(path))
        except Exception:
            continue
        if response.status_code == 200:
            try:
                value = response.json().get(key)
            except (ValueError, AttributeError):
                continue
            if isinstance(value, str):
                return value
    return None


__all__ = ["Server", "ServerError", "ServerPrompt", "ServerPromptError", "connect", "prompt_digest"]
