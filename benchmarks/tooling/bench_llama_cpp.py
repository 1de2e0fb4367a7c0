"""The llama.cpp engine measured against llama.cpp itself, against transformers, and what its weights cost.

Run: ``pytest benchmarks/tooling/bench_llama_cpp.py -s -p no:randomly`` (needs ``pytest-tee[llama]``; ~10 minutes
on 2 cores, most of it the transformers 1.5B rounds; the 1.5B Q4_K_M synthetic GGUF is built in seconds, in a
fresh cache directory). Three benchmarks, each printing one line and storing its numbers in ``extra_info``:

- **fidelity** (tiny and 1.5B Q4_K_M): in rotating order per repetition, the plugin's round (``LlamaRound``, what
  ``tokens_per_second`` runs) and a hand-written loop over llama-cpp-python's high-level ``Llama.eval`` with
  numpy argmax over ``Llama.scores``. For every round of both, llama.cpp's own counters (``llama_perf_context``:
  prompt-eval and eval time and counts) give its decode and prefill rates; the medians are compared (target:
  plugin within 2 % of the counters) and the plugin's decode rate against the hand loop's (it must not lose). A
  third, bare loop (decode and read the logits, nothing else) shows the floor any Python-driven loop has against
  the counters, which time only the computation inside ``llama_decode``.
- **speed** (1.5B): transformers bf16 and llama.cpp Q4_K_M decode rates interleaved in one process, each as a
  fraction of the memory-bandwidth roofline for the bytes its decode step reads (bandwidth measured here).
- **synthetic GGUF cost** (1.5B Q4_K_M): ready from nothing (write the sample, llama.cpp quantizes it, expand it
  to full size), then from the cache (lookup, and the engine's whole load: header check and llama.cpp opening it).
"""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs pytest-tee[llama]")

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.prompts import make_prompt
from pytest_tee.engines import get_engine
from pytest_tee.engines.base import LoadRequest
from pytest_tee.measure.rounds import RoundLog, RoundPlan
from pytest_tee.measure.timing import Workload, gc_paused

THREADS = int(__import__("os").environ.get("BENCH_THREADS", "2"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tee-cache")


@pytest.fixture(autouse=True)
def _cache_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_TEE_CACHE_DIR", str(cache))


def _prompt(checkpoint, tokens: int):
    return make_prompt(
        vocab_size=checkpoint.vocab_size, prompt_tokens=tokens, batch=1, token_range=checkpoint.text_token_range
    )


def _hand_loop(llm, ids: list[int], new_tokens: int) -> tuple[float, float, dict[str, float]]:
    """What a careful user writes with llama-cpp-python: ``Llama.eval`` the prompt, then argmax over the last
    logits and ``Llama.eval`` each token, stamping the clock per token. Returns (decode tok/s, e2e tok/s, counters).
    """
    import llama_cpp
    import numpy as np

    llm.reset()
    llama_cpp.llama_synchronize(llm.ctx)
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
    llama_cpp.llama_perf_context_reset(llm.ctx)
    n_vocab = llm.n_vocab()
    stamps = []
    gc.collect()
    with gc_paused():
        start = time.perf_counter()
        llm.eval(ids)
        for step in range(new_tokens):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
            token = int(np.argmax(logits))
            stamps.append(time.perf_counter())
            if step + 1 < new_tokens:
                llm.eval([token])
        elapsed = time.perf_counter() - start
    return (new_tokens - 1) / (stamps[-1] - stamps[0]), new_tokens / elapsed, _counters(llm.ctx)


def _bare_loop(llm, ids: list[int], new_tokens: int) -> tuple[float, dict[str, float]]:
    """The floor for any loop driven from Python: ``llama_decode`` and the logits read (which waits for the
    computation), nothing else — no argmax (a fixed token is fed back), one stamp per step. Returns (decode tok/s,
    counters): what llama.cpp does per step outside its own eval counter, plus two ctypes calls and a clock read.
    """
    import llama_cpp as lib

    ctx = llm.ctx
    lib.llama_synchronize(ctx)
    lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
    lib.llama_perf_context_reset(ctx)
    prompt = (lib.llama_token * len(ids))(*ids)
    one = (lib.llama_token * 1)(ids[0])
    step = lib.llama_batch_get_one(one, 1)
    decode, logits_at, clock = lib.llama_decode, lib.llama_get_logits_ith, time.perf_counter
    stamps = []
    with gc_paused():
        decode(ctx, lib.llama_batch_get_one(prompt, len(ids)))
        logits_at(ctx, -1)
        stamps.append(clock())
        for _ in range(new_tokens - 1):
            decode(ctx, step)
            logits_at(ctx, -1)
            stamps.append(clock())
    return (new_tokens - 1) / (stamps[-1] - stamps[0]), _counters(ctx)


def _counters(ctx) -> dict[str, float]:
    """llama.cpp's own performance counters for the round just run on ``ctx``."""
    import llama_cpp

    perf = llama_cpp.llama_perf_context(ctx)
    return {name: float(getattr(perf, name)) for name in ("t_p_eval_ms", "n_p_eval", "t_eval_ms", "n_eval")}


def _counter_rates(counters: dict[str, float]) -> tuple[float, float]:
    return counters["n_eval"] / (counters["t_eval_ms"] / 1e3), counters["n_p_eval"] / (counters["t_p_eval_ms"] / 1e3)


FIDELITY = [
    pytest.param("tiny-qwen2", "Q8_0", 128, 64, 15, id="tiny-qwen2-Q8_0"),
    pytest.param("r1-distill-qwen-1.5b", "Q4_K_M", 32, 32, 10, id="r1-distill-qwen-1.5b-Q4_K_M"),
]


@pytest.mark.parametrize(("checkpoint_id", "quant", "prompt_tokens", "new_tokens", "repetitions"), FIDELITY)
def test_plugin_rates_match_llama_cpps_counters(
    benchmark, checkpoint_id, quant, prompt_tokens, new_tokens, repetitions
):
    checkpoint = get(checkpoint_id)
    engine = get_engine("llama.cpp")
    request = LoadRequest("cpu", "cpu", quant, threads=THREADS, workload=(prompt_tokens, new_tokens, 1))
    loaded = engine.load(checkpoint, request)
    prompt = _prompt(checkpoint, prompt_tokens)
    ids = [int(t) for t in prompt.input_ids[0].tolist()]
    workload = Workload(prompt_tokens, new_tokens, 1)
    round_ = engine.rounds(loaded, prompt, workload, None)
    log = RoundLog(workload, RoundPlan(rounds=repetitions, warmup=0))
    round_.run_once()  # warm both paths
    _hand_loop(loaded.model, ids, new_tokens)

    plugin_counters, hand_counters, hand_decode, hand_e2e = [], [], [], []
    bare_decode, bare_counters = [], []

    def plugin() -> None:
        log.add(round_.run_once())
        plugin_counters.append(dict(round_.last_counters))

    def hand() -> None:
        decode, e2e, counters = _hand_loop(loaded.model, ids, new_tokens)
        hand_decode.append(decode)
        hand_e2e.append(e2e)
        hand_counters.append(counters)

    def bare() -> None:
        decode, counters = _bare_loop(loaded.model, ids, new_tokens)
        bare_decode.append(decode)
        bare_counters.append(counters)

    steps = [plugin, hand, bare]
    for repetition in range(repetitions):
        for offset in range(len(steps)):
            steps[(repetition + offset) % len(steps)]()

    plugin_decode = statistics.median(log.samples("decode_tps"))
    plugin_prefill = statistics.median(log.samples("prefill_tps"))
    plugin_e2e = statistics.median(log.samples("e2e_tps"))
    counter_decode = statistics.median(_counter_rates(c)[0] for c in plugin_counters)
    counter_prefill = statistics.median(_counter_rates(c)[1] for c in plugin_counters)
    hand_counter_decode = statistics.median(_counter_rates(c)[0] for c in hand_counters)
    numbers = {
        "checkpoint": checkpoint_id,
        "quant": quant,
        "workload": f"{prompt_tokens}+{new_tokens}",
        "threads": THREADS,
        "repetitions": repetitions,
        "plugin_decode_tps": round(plugin_decode, 3),
        "counters_decode_tps": round(counter_decode, 3),
        "decode_ratio": round(plugin_decode / counter_decode, 4),
        # Per step: what the plugin's clock sees beyond llama.cpp's eval counter (argmax, clock, ctypes, graph setup)
        "outside_counter_us_per_step": round((1 / plugin_decode - 1 / counter_decode) * 1e6, 1),
        "plugin_prefill_tps": round(plugin_prefill, 3),
        "counters_prefill_tps": round(counter_prefill, 3),
        "prefill_ratio": round(plugin_prefill / counter_prefill, 4),
        "plugin_e2e_tps": round(plugin_e2e, 3),
        "hand_loop_decode_tps": round(statistics.median(hand_decode), 3),
        "hand_loop_e2e_tps": round(statistics.median(hand_e2e), 3),
        "hand_loop_counters_decode_tps": round(hand_counter_decode, 3),
        "plugin_vs_hand_decode": round(plugin_decode / statistics.median(hand_decode), 4),
        "bare_loop_decode_tps": round(statistics.median(bare_decode), 3),
        "bare_loop_vs_its_counters": round(
            statistics.median(bare_decode) / statistics.median(_counter_rates(c)[0] for c in bare_counters), 4
        ),
    }
    benchmark.extra_info["fidelity"] = numbers
    benchmark.pedantic(lambda: None, rounds=1)
    print("\nLLAMA FIDELITY", numbers)


def test_llama_cpp_q4_k_m_beside_transformers_bf16(benchmark):
    from pytest_tee.environment.bandwidth import measure_read_bandwidth
    from pytest_tee.report.data import Workload as ReportWorkload
    from pytest_tee.report.roofline import roofline

    checkpoint = get("r1-distill-qwen-1.5b")
    prompt_tokens, new_tokens, repetitions = 32, 32, 5
    workload = Workload(prompt_tokens, new_tokens, 1)
    prompt = _prompt(checkpoint, prompt_tokens)
    rounds = {}
    logs = {}
    facts = {}
    for name, quant in (("llama.cpp", "Q4_K_M"), ("transformers", "bfloat16")):
        engine = get_engine(name)
        request = LoadRequest("cpu", "cpu", quant, threads=THREADS, workload=(prompt_tokens, new_tokens, 1))
        loaded = engine.load(checkpoint, request)
        rounds[name] = engine.rounds(loaded, prompt, workload, THREADS)
        rounds[name].run_once()
        logs[name] = RoundLog(workload, RoundPlan(rounds=repetitions, warmup=0))
        facts[name] = engine.describe(loaded)
    names = list(rounds)
    for repetition in range(repetitions):
        for offset in range(len(names)):
            name = names[(repetition + offset) % len(names)]
            logs[name].add(rounds[name].run_once())
    bandwidth = measure_read_bandwidth()
    numbers = {"bandwidth_gbps": bandwidth["read_gbps"], "threads": THREADS}
    for name in names:
        decode = statistics.median(logs[name].samples("decode_tps"))
        found, why = roofline(
            checkpoint_id=checkpoint.id,
            parameters=checkpoint.parameters,
            dtype="bfloat16",
            workload=ReportWorkload(prompt_tokens, new_tokens, 1),
            decode_tps=decode,
            decode_ci95=None,
            bandwidth_gbps=float(bandwidth["read_gbps"]),
            bandwidth_source="measured here",
            weight_bytes=facts[name].weight_bytes if name != "transformers" else None,
            quantization=facts[name].quantization,
        )
        numbers[f"{name}_decode_tps"] = round(decode, 3)
        numbers[f"{name}_gb_per_step"] = round(found.bytes_per_step / 1e9, 3) if found else why
        numbers[f"{name}_roofline_pct"] = round(found.fraction * 100, 1) if found else why
    benchmark.extra_info["speed"] = numbers
    benchmark.pedantic(lambda: None, rounds=1)
    print("\nLLAMA SPEED", numbers)


def test_synthetic_gguf_cost_first_time_and_cached(benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pytest_tee.checkpoints.gguf_synthetic import synthetic_gguf

    monkeypatch.setenv("PYTEST_TEE_CACHE_DIR", str(tmp_path))  # from nothing: an empty cache

    checkpoint = get("r1-distill-qwen-1.5b")
    cpu_started = time.process_time()  # all threads: on a shared machine wall time says more about neighbours
    first = synthetic_gguf(checkpoint, "Q4_K_M", threads=THREADS)
    first_cpu = time.process_time() - cpu_started
    cached = [synthetic_gguf(checkpoint, "Q4_K_M", threads=THREADS) for _ in range(3)]
    assert not first.cached
    assert all(c.cached for c in cached)
    load_started = time.perf_counter()
    engine = get_engine("llama.cpp")
    engine.load(checkpoint, LoadRequest("cpu", "cpu", "Q4_K_M", threads=THREADS))
    numbers = {
        "first_s": round(first.seconds, 2),
        "first_cpu_s": round(first_cpu, 2),
        "write_s": round(first.write_seconds, 2),
        "quantize_sample_s": round(first.quantize_seconds, 2),
        "cached_lookup_s": round(statistics.median(c.seconds for c in cached), 4),
        "cached_load_s": round(time.perf_counter() - load_started, 2),
        "file_gib": round(first.path.stat().st_size / 2**30, 3),
    }
    benchmark.extra_info["synthetic_gguf"] = numbers
    benchmark.pedantic(lambda: None, rounds=1)
    print("\nSYNTHETIC GGUF", numbers)
