"""Load shapes against one server: N requests in flight, or Poisson arrivals at a rate; one level's metrics.

A *level* sends ``requests`` streamed requests and waits for every one of them (bounded by the request timeouts):

- ``concurrency=N`` (closed loop): N workers each send their next request when their last one finished;
- ``rate=R`` (open loop): request i is sent at the i-th arrival of a Poisson process of R requests per second
  (exponential gaps from a seeded generator, so a level sends at the same instants every run), however many
  are still in flight.

Per request: TTFT, inter-token gaps, end-to-end latency, output tokens (``serving.stream.RequestRecord``).
Per level (``LevelResult.metrics``), over the level's wall time from the first send to the last answer:

- ``output_tps``   = output tokens of completed requests / wall time
- ``request_rate`` = completed requests / wall time
- ``ttft_pXX_s``, ``e2e_pXX_s`` over completed requests; ``itl_pXX_ms`` over every gap of every completed request
- ``error_rate``   = failed requests / requests sent. A failed request is counted here and listed by kind,
  never dropped: its tokens do not count as output, its time stays in the wall time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_tee.serving.client import Timeouts, async_client, stream_async
from pytest_tee.serving.stream import RequestRecord

if TYPE_CHECKING:
    from pytest_tee.serving.server import Server, ServerPrompt

Clock = Callable[[], float]
MAX_REQUESTS = 10_000  # per level: a bound on every loop here
MAX_IN_FLIGHT = 1_024


class LoadShapeError(ValueError):
    """A load shape that cannot be run (the message names the argument)."""


@dataclass(frozen=True)
class LoadShape:
    """Exactly one of ``concurrency`` and ``rate``; ``requests`` per level."""

    concurrency: int | None = None
    rate: float | None = None
    requests: int | None = None  # default: 4 per concurrent slot (closed loop), 16 (open loop)
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise LoadShapeError("give exactly one of concurrency=N (requests in flight) and rate=R (requests/s)")
        if self.concurrency is not None and (
            not isinstance(self.concurrency, int) or isinstance(self.concurrency, bool) or self.concurrency < 1
        ):
            raise LoadShapeError(f"concurrency={self.concurrency!r}: expected a whole number of at least 1")
        if self.concurrency is not None and self.concurrency > MAX_IN_FLIGHT:
            raise LoadShapeError(f"concurrency={self.concurrency}: at most {MAX_IN_FLIGHT} requests in flight")
        if self.rate is not None and (
            not isinstance(self.rate, (int, float)) or isinstance(self.rate, bool) or not 0 < self.rate < 1e6
        ):
            raise LoadShapeError(f"rate={self.rate!r}: expected requests per second above 0")
        if self.requests is not None and (
            not isinstance(self.requests, int) or isinstance(self.requests, bool) or not self.requests >= 1
        ):
            raise LoadShapeError(f"requests={self.requests!r}: expected a whole number of at least 1")
        if self.total > MAX_REQUESTS:
            raise LoadShapeError(f"requests={self.total}: at most {MAX_REQUESTS} per level")

    @property
    def total(self) -> int:
        if self.requests is not None:
            return self.requests
        return 4 * self.concurrency if self.concurrency is not None else 16

    @property
    def label(self) -> str:
        return f"c{self.concurrency}" if self.concurrency is not None else f"r{self.rate:g}"

    def to_dict(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"requests": self.total}
        if self.concurrency is not None:
            shape["concurrency"] = self.concurrency
        else:
            shape.update(rate=float(self.rate or 0.0), arrivals="poisson", seed=self.seed)
        return shape

    def send_offsets(self) -> list[float] | None:
        """Open loop: seconds after the level's start at which each request is sent (None: closed loop)."""
        if self.rate is None:
            return None
        import numpy as np

        gaps = np.random.default_rng(self.seed).exponential(1.0 / self.rate, self.total)
        gaps[0] = 0.0  # the first request opens the level
        return [float(x) for x in np.cumsum(gaps)]


def sweep(concurrency: Iterable[int] = (), rate: Iterable[float] = (), requests: int | None = None) -> list[Any]:
    """Levels for ``@pytest.mark.parametrize("shape", sweep(concurrency=(1, 2, 4, 8)))``: one test (one stored,
    gated result) per level, with ids ``c1``, ``c2``, … / ``r0.5``, …."""
    import pytest

    shapes = [LoadShape(concurrency=n, requests=requests) for n in concurrency]
    shapes += [LoadShape(rate=r, requests=requests) for r in rate]
    if not shapes:
        raise LoadShapeError("sweep() needs concurrency levels or rates")
    return [pytest.param(shape, id=shape.label) for shape in shapes]


@dataclass(frozen=True)
class LevelResult:
    shape: LoadShape
    records: tuple[RequestRecord, ...]

    @property
    def completed(self) -> list[RequestRecord]:
        return [record for record in self.records if record.ok]

    @property
    def failed(self) -> list[RequestRecord]:
        return [record for record in self.records if not record.ok]

    @property
    def wall_s(self) -> float:
        if not self.records:
            return 0.0
        return max(r.end for r in self.records) - min(r.sent for r in self.records)

    def errors_by_kind(self) -> dict[str, int]:
        return dict(Counter(str(record.error_kind) for record in self.failed))

    def metrics(self) -> dict[str, float]:
        return level_metrics(self.records)

    def summary(self) -> dict[str, Any]:
        """Stored with the level: counts, errors by kind with one message each, no text of any request."""
        messages: dict[str, str] = {}
        for record in self.failed:
            messages.setdefault(str(record.error_kind), str(record.error))
        return {
            "shape": self.shape.to_dict(),
            "sent": len(self.records),
            "completed": len(self.completed),
            "failed": len(self.failed),
            "errors": self.errors_by_kind(),
            "error_messages": messages,
            "wall_s": self.wall_s,
            "output_tokens": sum(r.output_tokens for r in self.completed),
        }


def level_metrics(records: Sequence[RequestRecord]) -> dict[str, float]:
    """The level's metrics (see the module docstring); percentiles only when some request completed."""
    import numpy as np

    if not records:
        raise LoadShapeError("a level without requests has no metrics")
    wall = max(r.end for r in records) - min(r.sent for r in records)
    done = [r for r in records if r.ok]
    values = {
        "output_tps": sum(r.output_tokens for r in done) / wall if wall > 0 else 0.0,
        "request_rate": len(done) / wall if wall > 0 else 0.0,
        "error_rate": (len(records) - len(done)) / len(records),
    }
    if done:
        ttft = [r.ttft_s for r in done if r.ttft_s is not None]
        p50, p90, p99 = np.percentile(ttft, [50, 90, 99])
        values.update(ttft_p50_s=float(p50), ttft_p90_s=float(p90), ttft_p99_s=float(p99))
        e50, e99 = np.percentile([r.e2e_s for r in done], [50, 99])
        values.update(e2e_p50_s=float(e50), e2e_p99_s=float(e99))
        gaps = [gap for r in done for gap in r.gaps_s()]
        if gaps:
            i50, i90, i99 = np.percentile(np.asarray(gaps) * 1e3, [50, 90, 99])
            values.update(itl_p50_ms=float(i50), itl_p90_ms=float(i90), itl_p99_ms=float(i99))
    return values


async def run_level_async(
    server: Server,
    prompt: ServerPrompt,
    new_tokens: int,
    shape: LoadShape,
    *,
    clock: Clock = time.perf_counter,
    first_variant: int = 0,
) -> LevelResult:
    """Run one level against ``server``; every request ends as a record (failures included)."""
    total = shape.total
    connections = min(total, shape.concurrency or MAX_IN_FLIGHT)
    timeouts: Timeouts = server.timeouts
    records: list[RequestRecord | None] = [None] * total
    url = server.completions_url

    async with async_client(timeouts, connections, server.headers) as client:

        async def send(index: int) -> None:
            body = server.body(prompt, new_tokens, first_variant + index)
            records[index] = await stream_async(
                client, url, body, expected_tokens=new_tokens, timeouts=timeouts, clock=clock
            )

        offsets = shape.send_offsets()
        if offsets is None:
            assert shape.concurrency is not None
            pending = iter(range(total))

            async def worker() -> None:
                for index in pending:  # shared iterator: each request index is taken once
                    await send(index)

            await asyncio.gather(*(worker() for _ in range(min(shape.concurrency, total))))
        else:
            start = clock()

            async def scheduled(index: int, offset: float) -> None:
                delay = start + offset - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                await send(index)

            await asyncio.gather(*(scheduled(i, offset) for i, offset in enumerate(offsets)))
    return LevelResult(shape, tuple(record for record in records if record is not None))


def run_level(
    server: Server, prompt: ServerPrompt, new_tokens: int, shape: LoadShape, *, first_variant: int = 0
) -> LevelResult:
    """:func:`run_level_async` from synchronous code (a fresh event loop per level)."""
    return asyncio.run(run_level_async(server, prompt, new_tokens, shape, first_variant=first_variant))


__all__ = ["LevelResult", "LoadShape", "LoadShapeError", "level_metrics", "run_level", "run_level_async", "sweep"]
