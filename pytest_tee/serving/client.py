"""Sending one streamed completion request with httpx, synchronously (rounds) or with asyncio (load levels).

Every failure becomes a :class:`~pytest_tee.serving.stream.RequestRecord` with an error kind, never an exception
and never a retry: a request that failed is part of what was measured. httpx retries nothing by default; the
transports are built with ``retries=0`` to keep it so. Timeouts: ``connect`` for the connection, ``read`` for the
first byte and for every gap between chunks after it, and ``total`` for the whole request (checked as chunks
arrive and, for asyncio, enforced by cancelling).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from pytest_tee.serving.stream import RequestRecord, StreamError, StreamTally

Clock = Callable[[], float]


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 60.0  # first byte, and every gap between chunks
    total_s: float = 600.0  # the whole request

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect_s, read=self.read_s, write=self.read_s, pool=self.connect_s)


def sync_client(timeouts: Timeouts, headers: Mapping[str, str] | None = None) -> httpx.Client:
    return httpx.Client(timeout=timeouts.httpx(), headers=dict(headers or {}), transport=httpx.HTTPTransport(retries=0))


def async_client(timeouts: Timeouts, connections: int, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        timeout=timeouts.httpx(),
        headers=dict(headers or {}),
        limits=limits,
        transport=httpx.AsyncHTTPTransport(retries=0, limits=limits),
    )


def stream_sync(
    client: httpx.Client,
    url: str,
    payload: Mapping[str, Any],
    *,
    expected_tokens: int | None,
    timeouts: Timeouts,
    clock: Clock = time.perf_counter,
) -> RequestRecord:
    """One streamed request; the clock is read just before sending and as each line of the body arrives."""
    tally = StreamTally(clock(), expected_tokens)
    deadline = tally.sent + timeouts.total_s
    try:
        with client.stream("POST", url, json=payload) as response:
            if response.status_code != 200:
                response.read()
                raise StreamError("http", http_error_text(response))
            for line in response.iter_lines():
                now = clock()
                tally.line(line, now)
                if tally.done:
                    break
                if now > deadline:
                    raise StreamError("timeout", f"the request took longer than {timeouts.total_s:g} s in total")
            tally.body_ended(clock())
    except StreamError as exc:
        return tally.finish(clock(), exc)
    except httpx.HTTPError as exc:
        return tally.finish(clock(), transport_error(exc, timeouts))
    return tally.finish(clock())


async def stream_async(
    client: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    *,
    expected_tokens: int | None,
    timeouts: Timeouts,
    clock: Clock = time.perf_counter,
) -> RequestRecord:
    """The asyncio twin of :func:`stream_sync`; the total timeout cancels the request."""
    tally = StreamTally(clock(), expected_tokens)

    async def read() -> None:
        async with client.stream("POST", url, json=payload) as response:
            if response.status_code != 200:
                await response.aread()
                raise StreamError("http", http_error_text(response))
            async for line in response.aiter_lines():
                tally.line(line, clock())
                if tally.done:
                    break
            tally.body_ended(clock())

    try:
        await asyncio.wait_for(read(), timeout=timeouts.total_s)
    except StreamError as exc:
        return tally.finish(clock(), exc)
    except asyncio.TimeoutError:
        return tally.finish(clock(), StreamError("timeout", f"the request took longer than {timeouts.total_s:g} s"))
    except httpx.HTTPError as exc:
        return tally.finish(clock(), transport_error(exc, timeouts))
    return tally.finish(clock())


def transport_error(exc: httpx.HTTPError, timeouts: Timeouts) -> StreamError:
    if isinstance(exc, httpx.ConnectTimeout):
        return StreamError("connect", f"no connection within {timeouts.connect_s:g} s")
    if isinstance(exc, httpx.ConnectError):
        return StreamError("connect", f"cannot connect: {_short(exc)}")
    if isinstance(exc, httpx.ReadTimeout):
        return StreamError("timeout", f"no data for {timeouts.read_s:g} s (first byte or between chunks)")
    if isinstance(exc, httpx.TimeoutException):
        return StreamError("timeout", f"timed out: {type(exc).__name__}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return StreamError("closed", f"the server closed the connection mid-response: {_short(exc)}")
    return StreamError("connect", f"{type(exc).__name__}: {_short(exc)}")


def http_error_text(response: httpx.Response) -> str:
    """Status and the server's error type/message, shortened; never the request body echoed back."""
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail"))
        if isinstance(error, dict):
            detail = str(error.get("message") or error.get("type") or "")
        elif isinstance(error, list) and error and isinstance(error[0], dict):  # FastAPI validation errors
            first = error[0]
            detail = f"{'.'.join(str(part) for part in first.get('loc', ()))}: {first.get('msg', '')}"
        elif isinstance(error, str):
            detail = error
    # Validation errors quote the input back ("'input': [...]"): keep only what comes before, so no prompt leaks.
    detail = re.split(r"['\"]?input['\"]?\s*[:=]", detail, maxsplit=1, flags=re.IGNORECASE)[0]
    detail = " ".join(detail.split())[:200]
    return f"HTTP {response.status_code} from {response.request.url.path}" + (f": {detail}" if detail else "")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


__all__ = ["Timeouts", "async_client", "http_error_text", "stream_async", "stream_sync", "sync_client"]
