"""Where the server runs and what it is: the endpoint URL, local or remote, and the server's own description.

A *local* endpoint is one this session's host serves: a loopback address, ``localhost``, or one of this host's
own interface addresses. Its results carry the host's environment record like any other run. A *remote* endpoint
is labelled remote with the URL's host recorded, and whatever trust boundary it may run in is shown as
unverified: the environment this session detected is the client's, not the server's.

Server kinds decide how a request asks for exactly N tokens (see ``docs/serving.md``). They are recognised from
``/v1/models`` (``owned_by``) and can be named with ``--tee-server-kind`` where that guess is wrong.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SERVER_KINDS = ("auto", "vllm", "sglang", "llama.cpp", "llama-cpp-python", "ollama", "tgi", "generic")

# /v1/models "owned_by" → server kind (what each server writes there).
_OWNED_BY = {
    "vllm": "vllm",
    "sglang": "sglang",
    "llamacpp": "llama.cpp",
    "me": "llama-cpp-python",
    "library": "ollama",
    "ollama": "ollama",
    "tgi": "tgi",
    "text-generation-inference": "tgi",
}


class EndpointError(ValueError):
    """A URL that is not an http(s) endpoint, or a server that does not answer like an OpenAI-compatible one."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # scheme://host[:port][/prefix], without a trailing /v1
    host: str
    port: int
    local: bool

    @property
    def location(self) -> str:
        return "local" if self.local else "remote"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def to_dict(self) -> dict[str, Any]:
        """Stored with results: no credentials, no path beyond the host and port."""
        return {"location": self.location, "host": self.host, "port": self.port}


def parse_endpoint(text: str) -> Endpoint:
    """``http://127.0.0.1:8000`` or ``…/v1``; EndpointError saying what would be valid otherwise."""
    raw = text.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(
            f"{text!r} is not an http(s) URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000"
        )
    if parts.username or parts.password:
        raise EndpointError(f"{parts.hostname}: put the API key in an environment variable, not in the URL")
    if parts.query or parts.fragment:
        raise EndpointError(f"{text!r}: the endpoint URL takes no query or fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointError(f"{text!r}: the port is not a number from 1 to 65535") from None
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    return Endpoint(f"{parts.scheme}://{netloc}:{port}{path}", host, port, is_local_host(host))


def is_local_host(host: str) -> bool:
    """Loopback, ``localhost``, or an address of one of this host's interfaces (nothing is resolved remotely)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() in _own_names()
    return address.is_loopback or str(address) in _own_addresses()


def _own_addresses() -> set[str]:
    import psutil

    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(address.address.split("%")[0])
    return found


def _own_names() -> set[str]:
    return {socket.gethostname().lower(), socket.getfqdn().lower()}


@dataclass(frozen=True)
class ServerInfo:
    """What the server says about itself, as stored with results (its speed depends on these)."""

    kind: str
    model: str
    owned_by: str = ""
    version: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)  # e.g. n_vocab, max_model_len, n_ctx_train

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "owned_by": self.owned_by,
            "version": self.version,
            **self.facts,
        }


def describe_server(models: Any, requested_model: str | None, kind: str) -> ServerInfo:
    """ServerInfo from a ``/v1/models`` body: the model named (it must be served) or the only one served."""
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) and "id" in item for item in data):
        raise EndpointError("/v1/models did not return an OpenAI model list ({'data': [{'id': …}, …]})")
    served = [str(item["id"]) for item in data]
    if requested_model is not None:
        if requested_model not in served:
            raise EndpointError(
                f"--tee-served-model {requested_model!r} is not served here; the server lists: "
                f"{', '.join(served) or 'nothing'}"
            )
        chosen = next(item for item in data if str(item["id"]) == requested_model)
    elif len(data) == 1:
        chosen = data[0]
    else:
        raise EndpointError(
            f"the server lists {len(data)} models ({', '.join(served) or 'none'}); name one with --tee-served-model"
        )
    owned_by = str(chosen.get("owned_by") or "")
    if kind == "auto":
        kind = _OWNED_BY.get(owned_by.lower(), "generic")
    facts = {}
    meta = chosen.get("meta") if isinstance(chosen.get("meta"), dict) else {}
    for key in ("n_vocab", "n_ctx_train", "n_params", "size"):  # llama.cpp's server
        if isinstance(meta.get(key), (int, float)):
            facts[key] = meta[key]
    if isinstance(chosen.get("max_model_len"), int):  # vLLM
        facts["max_model_len"] = chosen["max_model_len"]
    return ServerInfo(kind=kind, model=str(chosen["id"]), owned_by=owned_by, facts=facts)


__all__ = [
    "SERVER_KINDS",
    "Endpoint",
    "EndpointError",
    "ServerInfo",
    "describe_server",
    "is_local_host",
    "parse_endpoint",
]
