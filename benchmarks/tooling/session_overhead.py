"""What one pytest-tee session spends outside its measured rounds, per checkpoint — the fixed cost that every
session of ``pytest-tee ab`` pays again.

Each session is its own ``python -m pytest`` process measuring ``gate_evaluation/bench_gate_decode.py``, as in
``ab``. A small plugin (``-p session_phases``, from this folder) stamps the phases; the parent times the process:

- ``start``: interpreter start, pytest and its plugins imported, up to pytest-tee's ``pytest_configure``;
- ``configure``: the plugins' configure — pytest-tee's environment detection (and baseline lookup when gating);
- ``imports``: ``import torch`` and transformers' model classes (done by the phase plugin at session start, so
  that it is a phase of its own; otherwise the first test pays it);
- ``collect``: collection, up to the first test;
- ``load``: the ``deepseek_model`` fixture — the model built and its weights materialized;
- ``warmup``: the test minus model and measured rounds (warmup rounds, prompt, pytest-benchmark's bookkeeping);
- ``rounds``: the measured rounds (pytest-benchmark's per-round times);
- ``finish``: teardown, pytest-benchmark's machine info, results written, interpreter exit.

Also, for reference, ``python -c "import torch, transformers"`` alone.

    python benchmarks/tooling/session_overhead.py --models tiny-qwen2 --sessions 3
    python benchmarks/tooling/session_overhead.py --models r1-distill-qwen-1.5b --sessions 2 --out results/x
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pytest_tee.baseline.ab_command import SESSION_BOOTSTRAP

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH = HERE / "gate_evaluation" / "bench_gate_decode.py"
PHASES = ("start", "configure", "imports", "collect", "load", "warmup", "rounds", "finish")


def imports_seconds(python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", "import torch, transformers"], check=True)
    return time.perf_counter() - started


def session(python: str, model: str, extra: Sequence[str], *, fast_exit: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tee-overhead-") as scratch:
        phases, results = Path(scratch) / "phases.json", Path(scratch) / "bench.json"
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), environment.get("PYTHONPATH", "")])
        environment["TEE_PHASES_JSON"] = str(phases)
        environment["TEE_PHASES_T0"] = repr(time.time())
        command = [
            python,
            *(["-c", SESSION_BOOTSTRAP] if fast_exit else ["-m", "pytest"]),
            str(BENCH),
            "-p",
            "session_phases",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--tee-models={model}",
            "--tee-device=cpu",
            "--tee-threads=1",
            "--tee-new-tokens=32",
            f"--benchmark-json={results}",
            *extra,
        ]
        started = time.time()
        subprocess.run(command, check=True, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL)
        ended = time.time()
        stamps = json.loads(phases.read_text())
        bench = json.loads(results.read_text())["benchmarks"][0]
    rounds = sum(bench["stats"]["data"])
    load = stamps["load_end"] - stamps["load_start"]
    return {
        "start": stamps["configure_start"] - started,
        "configure": stamps["configure_end"] - stamps["configure_start"],
        "imports": stamps["imports_end"] - stamps["configure_end"],
        "collect": stamps["setup_start"] - stamps["imports_end"],
        "load": load,
        "warmup": stamps["call_end"] - stamps["setup_start"] - load - rounds,
        "rounds": rounds,
        "finish": ended - stamps["call_end"],
        "total": ended - started,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-qwen2"])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", type=Path, default=None, help="write <out>.json")
    parser.add_argument(
        "--fast-exit", action="store_true", help="start sessions as pytest-tee ab does (no interpreter shutdown)"
    )
    parser.add_argument("--both", action="store_true", help="alternate plain and --fast-exit sessions")
    parser.add_argument("extra", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"imports_s": [imports_seconds(args.python) for _ in range(args.sessions)], "models": {}}
    print(f"import torch, transformers: median {statistics.median(result['imports_s']):.1f} s", flush=True)
    modes = ["normal", "fast-exit"] if args.both else ["fast-exit" if args.fast_exit else "normal"]
    for model in args.models:
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
        for _ in range(args.sessions):
            for mode in modes:  # interleaved, so that both modes see the same machine
                runs[mode].append(session(args.python, model, args.extra, fast_exit=mode == "fast-exit"))
                print(model, mode, {key: round(value, 2) for key, value in runs[mode][-1].items()}, flush=True)
        result["models"][model] = {}
        for mode in modes:
            medians = {key: statistics.median(run[key] for run in runs[mode]) for key in (*PHASES, "total")}
            result["models"][model][mode] = {"sessions": runs[mode], "median": medians}
            outside = medians["total"] - medians["rounds"]
            print(f"{model} ({mode}): median total {medians['total']:.1f} s, outside the rounds {outside:.1f} s:")
            print("  " + ", ".join(f"{phase} {medians[phase]:.1f}" for phase in PHASES), flush=True)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
