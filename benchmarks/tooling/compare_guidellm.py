"""pytest-tee's load level against guidellm's on the same local server, same prompts, same shape.

Run: ``python benchmarks/tooling/compare_guidellm.py GUIDELLM_EXE`` with a llama-cpp-python server already
serving on ``--url`` (default http://127.0.0.1:18556). guidellm 0.8.1 runs here without a tokenizer when given
its prompts as a JSON file (HF_HUB_OFFLINE=1; it never asks the hub): its /v1/completions request format with
``max_tokens``. Both tools: concurrency 4, 32 requests of 32 prompt + 32 new tokens, the prompts pytest-tee
calibrated (neutral built-in text). Prints one table of medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_tee.serving.load import LoadShape, run_level  # noqa: E402
from pytest_tee.serving.server import connect  # noqa: E402


def ours(url: str, repeats: int = 3) -> tuple[list[str], list[dict[str, float]]]:
    server = connect(url)
    prompt = server.make_prompt(32, variants=8)
    run_level(server, prompt, 32, LoadShape(concurrency=4, requests=4))  # warm up
    levels = [run_level(server, prompt, 32, LoadShape(concurrency=4, requests=32)) for _ in range(repeats)]
    rows = []
    for level in levels:
        done = level.completed
        gaps = [g for r in done for g in r.gaps_s()]
        rows.append(
            {
                "output_tps": level.metrics()["output_tps"],
                "request_rate": level.metrics()["request_rate"],
                "ttft_p50_ms": statistics.median(r.ttft_s for r in done) * 1e3,
                "itl_mean_ms": statistics.mean(gaps) * 1e3,
                "e2e_p50_ms": statistics.median(r.e2e_s for r in done) * 1e3,
                "failed": len(level.failed),
            }
        )
    return [str(prompt.payload(i)) for i in range(8)], rows


def guidellm(exe: str, url: str, prompts: list[str], out: Path) -> dict[str, float]:
    data = out / "prompts.json"
    data.write_text(json.dumps([{"prompt": prompts[i % len(prompts)]} for i in range(32)]))
    result = out / "guidellm.json"
    backend = f"kind=openai_http,target={url},validate_backend=false,request_format=/v1/completions,max_tokens=32"
    command = [
        exe, "run",
        "--backend", backend,
        "--profile", "kind=concurrent,streams=4",
        "--constraint", "kind=max_requests,count=32",
        "--data", f"kind=json_file,path={data}",
        "--output", f"kind=json,path={result}",
        "--disable-progress", "--disable-console",
    ]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, timeout=600)
    metrics = json.loads(result.read_text())["benchmarks"][0]["metrics"]

    def successful(name: str) -> dict:
        return metrics[name]["successful"]

    requests = successful("request_latency")["count"]
    duration = json.loads(result.read_text())["benchmarks"][0].get("duration")
    tokens = successful("output_token_count")["mean"] * requests
    return {
        "output_tps": tokens / duration if duration else float("nan"),
        "output_tps_guidellm_mean": successful("output_tokens_per_second")["mean"],
        "request_rate": requests / duration if duration else float("nan"),
        "ttft_p50_ms": successful("time_to_first_token_ms")["median"],
        "itl_mean_ms": successful("inter_token_latency_ms")["mean"],
        "e2e_p50_ms": successful("request_latency")["median"] * 1e3,
        "requests": requests,
        "output_tokens_mean": successful("output_token_count")["mean"],
    }


def main() -> None:
    exe = sys.argv[1]
    url = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:18556"
    prompts, mine = ours(url)
    out = Path(tempfile.mkdtemp(prefix="tee-guidellm-"))
    theirs = [guidellm(exe, url, prompts, out) for _ in range(3)]
    print(json.dumps({"pytest_tee": mine, "guidellm": theirs}, indent=1))
    keys = ("output_tps", "request_rate", "ttft_p50_ms", "itl_mean_ms", "e2e_p50_ms")
    print("| metric | pytest-tee (median of 3 levels) | guidellm (median of 3 runs) | guidellm / pytest-tee |")
    print("|---|---:|---:|---:|")
    for key in keys:
        a = statistics.median(row[key] for row in mine)
        b = statistics.median(row[key] for row in theirs)
        print(f"| {key} | {a:.3g} | {b:.3g} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
