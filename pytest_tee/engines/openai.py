"""The openai engine: an OpenAI-compatible streaming server (vLLM, SGLang, llama.cpp's server, Ollama, TGI) measured
over HTTP, one request per round.

pytest-tee runs no server of its own: ``--tee-endpoint=URL`` names one that is already serving. Loading asks it
what it serves (``/v1/models``, or ``--tee-served-model``); a round is one streamed ``/v1/completions`` request
for exactly N tokens whose stamps are read as each chunk arrives (``serving.stream``), the count checked against
the chunks and the server's ``usage`` block. The API key comes from the environment variable named by
``--tee-api-key-env`` (default ``OPENAI_API_KEY``) and is never stored. Concurrency and arrival rates are the
``tee_load`` fixture's (``serving.load``), over the same server handle.
"""

from __future__ import annotations

import gc
import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

from pytest_tee.engines.base import EngineError, LoadRequest
from pytest_tee.records import EngineInfo

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.measure.timing import RoundRecord, Workload
    from pytest_tee.serving.server import Server, ServerPrompt
    from pytest_tee.serving.stream import RequestRecord

NAME = "openai"


class OpenAIEngine:
    name = NAME

    def load(self, checkpoint: Checkpoint, request: LoadRequest) -> LoadedModel:
        from pytest_tee.checkpoints.loading import LoadedModel
        from pytest_tee.serving.client import Timeouts
        from pytest_tee.serving.endpoint import EndpointError
        from pytest_tee.serving.server import ServerError, connect

        options = request.options
        endpoint = options.get("endpoint")
        if not endpoint:
            raise EngineError(
                "--tee-engine=openai measures a running server: give its URL with --tee-endpoint=URL "
                "(e.g. http://127.0.0.1:8000)"
            )
        read_s = float(options.get("request_timeout") or 60.0)
        try:
            server = connect(
                str(endpoint),
                served_model=options.get("served_model"),
                kind=str(options.get("server_kind") or "auto"),
                api_key_env=str(options.get("api_key_env") or "OPENAI_API_KEY"),
                timeouts=Timeouts(read_s=read_s, total_s=max(read_s * 10, 600.0)),
                vocab_size=checkpoint.vocab_size,
                extra=json.loads(options["request_extra"]) if options.get("request_extra") else None,
            )
        except (ServerError, EndpointError) as exc:
            raise EngineError(f"--tee-endpoint: {exc}") from None
        return LoadedModel(
            checkpoint=checkpoint,
            model=server,
            tokenizer=None,
            weights="served",
            dtype="served",
            device=f"{server.endpoint.location}-server",
            weights_source=f"{server.info.kind} server at {server.endpoint.host}:{server.endpoint.port} serving "
            f"{server.info.model!r}",
            dtype_reason="as the server loaded it",
            engine=NAME,
            vocab_size=server.vocab_size,
        )

    def cache_key(self, request: LoadRequest) -> tuple[Any, ...]:
        options = request.options
        return (
            NAME,
            options.get("endpoint"),
            options.get("served_model"),
            options.get("server_kind"),
            options.get("request_extra"),
        )

    def unavailable_reason(self, execution_env: str, device: str) -> str | None:
        import importlib.util

        if importlib.util.find_spec("httpx") is None:
            return "--tee-engine=openai needs httpx: pip install 'pytest-tee[server]'"
        if device.startswith("cuda"):  # one server is measured once: the client's devices are not its dimension
            return "the openai engine measures a server, not this host's GPU: it runs in the CPU execution environment"
        return None

    def rounds(self, loaded: LoadedModel, prompt: Any, workload: Workload, threads: int | None) -> ServerRound:
        return ServerRound(loaded.model, server_prompt(loaded.model, prompt), workload)

    def describe(self, loaded: LoadedModel) -> EngineInfo:
        server: Server = loaded.model
        facts = server.facts()
        endpoint = facts["endpoint"]
        key = {"server_kind": server.info.kind, "served_model": server.info.model, "location": endpoint["location"]}
        if endpoint["location"] == "remote":
            key["host"] = endpoint["host"]
        if facts.get("request_extra"):
            key["request_extra"] = facts["request_extra"]
        return EngineInfo(
            name=NAME,
            quantization=loaded.dtype,
            build={"server": facts["server"], "httpx": _version("httpx")},
            settings={key: value for key, value in facts.items() if key != "server"},
            key=key,
        )


def server_prompt(server: Server, prompt: Any) -> ServerPrompt:
    from pytest_tee.serving.server import ServerPrompt

    if isinstance(prompt, ServerPrompt):
        return prompt
    raise EngineError("the openai engine needs a prompt built by its server (tokens_per_second builds one)")


class ServerRound:
    """One streamed request per round: prepare() collects garbage, timed() sends and reads, take() verifies."""

    def __init__(self, server: Server, prompt: ServerPrompt, workload: Workload) -> None:
        self.server = server
        self.prompt = prompt
        self.workload = workload
        self.prompt_tokens = prompt.token_count
        self.records: list[RequestRecord] = []  # every request of this benchmark, for server-timing comparisons
        self._last: RequestRecord | None = None
        self._index = 0

    def prepare(self) -> None:
        gc.collect()

    def timed(self) -> None:
        self._last = self.server.stream(self.prompt, self.workload.new_tokens, self._index)
        self._index += 1

    def take(self) -> RoundRecord:
        from pytest_tee.measure.metrics import RoundError, RoundTimes
        from pytest_tee.measure.timing import RoundRecord

        record, self._last = self._last, None
        if record is None:
            raise RoundError("no round was timed")
        self.records.append(record)
        if record.error is not None:
            raise RoundError(f"request to {self.server.endpoint.base_url} failed ({record.error_kind}): {record.error}")
        if record.prompt_tokens is not None and record.prompt_tokens != self.prompt_tokens:
            raise RoundError(
                f"the server counted {record.prompt_tokens} prompt tokens, expected {self.prompt_tokens} "
                "(was the prompt cached or changed?)"
            )
        # The client's memory says nothing about the server's: no peaks.
        return RoundRecord(RoundTimes(record.sent, record.token_times, record.end), None, None)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
