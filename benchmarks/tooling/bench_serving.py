"""The openai engine against llama-cpp-python's server on this machine: stamps vs the server's own timings, the
client's overhead per token, and a concurrency sweep (table + plot).

Run: ``python benchmarks/tooling/bench_serving.py OUT_DIR`` (needs ``pytest-tee[llama-server]``; a few minutes on
two cores). It builds the tiny synthetic GGUF (tiny-qwen2, Q8_0) in a fresh cache, starts the server on loopback
with ``--verbose True`` so that llama.cpp prints its own ``llama_perf_context_print`` timings per request, and:

1. **stamps vs server timings** (concurrency 1, 20 requests, 32 prompt + 16 new tokens): per request, the
   client's TTFT against llama.cpp's ``prompt eval time``, and the client's decode span (first → last token)
   against llama.cpp's ``eval time`` (N − 1 runs). The difference is the serving path: sampling and
   detokenization in Python, the SSE stream, HTTP on loopback.
2. **client overhead per token** at concurrency 1 and 16: this process's CPU time (``time.process_time``) over a
   level divided by the tokens it received — the server runs in its own process, so this is the client alone.
3. **sweep** at concurrency 1, 2, 4, 8 (8 × c requests per level, 3 levels each, medians): output tok/s,
   request rate, TTFT p50/p99, ITL p99; written as ``sweep.md`` and ``sweep.png``.

Everything is written to OUT_DIR as ``serving.json`` too. The machine is shared: numbers are from one run.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_tee.checkpoints.catalogue import get  # noqa: E402
from pytest_tee.checkpoints.gguf_synthetic import synthetic_gguf  # noqa: E402
from pytest_tee.serving.load import LoadShape, run_level  # noqa: E402
from pytest_tee.serving.server import connect  # noqa: E402
from tests.fakes.llama_server import LlamaServer, exact_n_bias  # noqa: E402

PERF = re.compile(r"(prompt eval|        eval) time =\s+([0-9.]+) ms /\s+([0-9]+) (tokens|runs)")


def server_timings(log: Path, start: int) -> list[dict[str, float]]:
    """llama.cpp's per-request perf lines after byte ``start`` of the server log: prompt-eval and eval ms."""
    text = log.read_text(errors="replace")[start:]
    found: list[dict[str, float]] = []
    current: dict[str, float] = {}
    for match in PERF.finditer(text):
        if match.group(1) == "prompt eval":
            current = {"prompt_ms": float(match.group(2)), "prompt_n": float(match.group(3))}
        else:
            current.update(eval_ms=float(match.group(2)), eval_n=float(match.group(3)))
            found.append(current)
            current = {}
    return found


def stamps_vs_server(server: Any, llama: LlamaServer, requests: int = 20) -> dict[str, Any]:
    prompt = server.make_prompt(32, variants=8)
    start = len(llama.log.read_text(errors="replace"))
    records = [server.stream(prompt, 16, i) for i in range(requests)]
    time.sleep(0.5)  # the server prints its timings after the last chunk
    timings = server_timings(llama.log, start)
    assert all(r.ok for r in records), [r.error for r in records]
    assert len(timings) == requests, f"{len(timings)} perf blocks for {requests} requests"
    rows = []
    for record, timing in zip(records, timings, strict=True):
        decode = record.token_times[-1] - record.token_times[0]
        rows.append(
            {
                "client_ttft_ms": (record.ttft_s or 0) * 1e3,
                "server_prompt_ms": timing["prompt_ms"],
                "server_prompt_tokens": timing["prompt_n"],
                "client_decode_ms": decode * 1e3,
                "server_eval_ms": timing["eval_ms"],
                "server_eval_runs": timing["eval_n"],
            }
        )

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    summary = {
        "requests": requests,
        "client_ttft_ms": median("client_ttft_ms"),
        "server_prompt_eval_ms": median("server_prompt_ms"),
        "client_decode_ms_per_token": statistics.median(r["client_decode_ms"] / 15 for r in rows),
        "server_eval_ms_per_token": statistics.median(r["server_eval_ms"] / r["server_eval_runs"] for r in rows),
        "server_eval_runs": median("server_eval_runs"),
        "server_prompt_tokens": median("server_prompt_tokens"),
    }
    return {"summary": summary, "rows": rows}


def client_overhead(server: Any, concurrency: int, requests: int) -> dict[str, float]:
    prompt = server.make_prompt(32, variants=8)
    cpu, wall = time.process_time(), time.perf_counter()
    level = run_level(server, prompt, 32, LoadShape(concurrency=concurrency, requests=requests))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    tokens = sum(r.output_tokens for r in level.completed)
    return {
        "concurrency": concurrency,
        "requests": requests,
        "failed": len(level.failed),
        "tokens": tokens,
        "client_cpu_s": cpu,
        "wall_s": wall,
        "client_cpu_us_per_token": cpu / tokens * 1e6 if tokens else float("nan"),
        "client_cpu_share_of_wall": cpu / wall,
    }


def sweep(server: Any, levels: tuple[int, ...] = (1, 2, 4, 8), repeats: int = 3) -> list[dict[str, Any]]:
    prompt = server.make_prompt(32, variants=8)
    out = []
    for concurrency in levels:
        shape = LoadShape(concurrency=concurrency, requests=8 * concurrency)
        run_level(server, prompt, 32, LoadShape(concurrency=concurrency, requests=concurrency))  # warm up
        results = [run_level(server, prompt, 32, shape, first_variant=i) for i in range(repeats)]
        metrics = [r.metrics() for r in results]
        row: dict[str, Any] = {"concurrency": concurrency, "requests": shape.total, "repeats": repeats}
        for name in ("output_tps", "request_rate", "ttft_p50_s", "ttft_p99_s", "itl_p99_ms", "error_rate"):
            row[name] = statistics.median(m.get(name, float("nan")) for m in metrics)
        row["failed"] = sum(len(r.failed) for r in results)
        out.append(row)
    return out


def sweep_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| concurrency | requests/level | output tok/s | req/s | TTFT p50 ms | TTFT p99 ms | ITL p99 ms | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r['requests']} | {r['output_tps']:.0f} | {r['request_rate']:.1f} | "
            f"{r['ttft_p50_s'] * 1e3:.0f} | {r['ttft_p99_s'] * 1e3:.0f} | {r['itl_p99_ms']:.1f} | {r['failed']} |"
        )
    return "\n".join(lines) + "\n"


def sweep_plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r["concurrency"] for r in rows]
    figure, left = plt.subplots(figsize=(6, 3.6))
    left.plot(levels, [r["output_tps"] for r in rows], "o-", color="tab:blue", label="output tok/s")
    left.set_xlabel("requests in flight (concurrency)")
    left.set_ylabel("output tok/s", color="tab:blue")
    left.set_xscale("log", base=2)
    left.set_xticks(levels, [str(level) for level in levels])
    right = left.twinx()
    right.plot(levels, [r["ttft_p99_s"] * 1e3 for r in rows], "s--", color="tab:red", label="TTFT p99")
    right.set_ylabel("TTFT p99 (ms)", color="tab:red")
    left.set_title("llama-cpp-python server, tiny-qwen2 Q8_0, 32+32 tokens (2 shared cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="tee-serving-"))
    built = synthetic_gguf(get("tiny-qwen2"), "Q8_0", root=cache)
    results: dict[str, Any] = {}
    with LlamaServer(built.path, threads=1, verbose=True) as llama:  # verbose: llama.cpp's perf lines per request
        server = connect(llama.url, extra={"logit_bias": exact_n_bias(built.path)})
        results["stamps_vs_server"] = stamps_vs_server(server, llama)
        print("stamps vs server:", json.dumps(results["stamps_vs_server"]["summary"]))
        results["client_overhead"] = [client_overhead(server, c, 4 * c) for c in (1, 16)]
        for row in results["client_overhead"]:
            print("client overhead:", json.dumps(row))
        results["sweep"] = sweep(server)
    (out / "sweep.md").write_text(sweep_markdown(results["sweep"]))
    sweep_plot(results["sweep"], out / "sweep.png")
    (out / "serving.json").write_text(json.dumps(results, indent=2))
    print(sweep_markdown(results["sweep"]))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "serving-bench"))
