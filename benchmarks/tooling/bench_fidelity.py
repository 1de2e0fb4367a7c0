"""Does pytest-tee measure what a careful person with a stopwatch would? And what does its streamer cost?

Run: ``pytest benchmarks/tooling/bench_fidelity.py -s`` (tiny model and the 1.5B synthetic shape; ~5 minutes on 2
cores). Each repetition times, on the same model in the same process, in rotating order:

- the plugin's round (``RoundRunner``: streamer stamps per token, the code ``tokens_per_second`` runs);
- a hand-timed ``generate`` of N tokens without a streamer (end-to-end rate = N / time);
- a hand-timed ``generate`` of 1 token (prefill), so the hand decode rate is (N − 1) / (t_N − t_1);
- the N-token hand timing again with the garbage collector left running, to show what keeping it out is worth.

Like the plugin, the careful hand timings collect garbage first and keep the collector out of the timed call
(pyperf and ``--benchmark-disable-gc`` do the same). The medians of the two decode and the two end-to-end rates
are printed and stored in ``extra_info``; their ratio is the fidelity (target: within 1 %). The streamer overhead
per token is measured twice: ``put`` alone (pytest-benchmark's timing of 10 000 calls) and in situ (plugin round
time − hand round time) / N.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.loading import load_model
from pytest_tee.checkpoints.prompts import make_prompt
from pytest_tee.measure.rounds import RoundLog, RoundPlan
from pytest_tee.measure.timing import RoundRunner, TokenClock, Workload, gc_paused, generate_kwargs

CASES = [
    pytest.param("tiny-qwen2", 128, 64, 15, id="tiny-qwen2"),
    pytest.param("r1-distill-qwen-1.5b", 32, 16, 12, id="r1-distill-qwen-1.5b"),
]


def _hand_time(model, ids, mask, new_tokens: int, *, keep_gc_out: bool = True) -> float:
    if keep_gc_out:
        gc.collect()
    with gc_paused() if keep_gc_out else contextlib.nullcontext(), torch.inference_mode():
        start = time.perf_counter()
        output = model.generate(input_ids=ids, attention_mask=mask, **generate_kwargs(new_tokens))
        elapsed = time.perf_counter() - start
    assert output.shape[1] == ids.shape[1] + new_tokens
    return elapsed


@pytest.mark.parametrize(("checkpoint_id", "prompt_tokens", "new_tokens", "repetitions"), CASES)
def test_plugin_rates_match_a_hand_timed_loop(benchmark, checkpoint_id, prompt_tokens, new_tokens, repetitions):
    checkpoint = get(checkpoint_id)
    loaded = load_model(
        checkpoint,
        device="cpu",
        dtype="auto",
        weights_mode="synthetic",
        model_paths={},
        workload=(prompt_tokens, new_tokens, 1),
    )
    prompt = make_prompt(vocab_size=checkpoint.vocab_size, prompt_tokens=prompt_tokens, batch=1)
    ids, mask = prompt.input_ids, prompt.attention_mask
    workload = Workload(prompt_tokens, new_tokens, 1)
    runner = RoundRunner(loaded.model, ids, mask, workload, "cpu")
    log = RoundLog(workload, RoundPlan(rounds=repetitions, warmup=0))
    runner.run_once()  # warm up every path once
    _hand_time(loaded.model, ids, mask, new_tokens)
    _hand_time(loaded.model, ids, mask, 1)

    plugin_round_s, hand_round_s, hand_prefill_s, gc_on_round_s = [], [], [], []
    for repetition in range(repetitions):
        steps = [
            lambda: log.add(runner.run_once()),
            lambda: hand_round_s.append(_hand_time(loaded.model, ids, mask, new_tokens)),
            lambda: hand_prefill_s.append(_hand_time(loaded.model, ids, mask, 1)),
            lambda: gc_on_round_s.append(_hand_time(loaded.model, ids, mask, new_tokens, keep_gc_out=False)),
        ]
        for offset in range(len(steps)):  # rotate the order so drift does not favour one path
            steps[(repetition + offset) % len(steps)]()
    for values in log.measured_rounds:
        plugin_round_s.append(new_tokens / values["e2e_tps"])

    plugin_decode = statistics.median(log.samples("decode_tps"))
    plugin_e2e = statistics.median(log.samples("e2e_tps"))
    hand_e2e = new_tokens / statistics.median(hand_round_s)
    hand_decode = (new_tokens - 1) / (statistics.median(hand_round_s) - statistics.median(hand_prefill_s))
    in_situ_us = (statistics.median(plugin_round_s) - statistics.median(hand_round_s)) / new_tokens * 1e6

    clock = TokenClock()
    clock.put(ids)  # the prompt put; every later put stamps the clock
    token = torch.zeros(1, dtype=torch.long)
    benchmark.pedantic(lambda: [clock.put(token) for _ in range(10_000)], rounds=5, warmup_rounds=1)
    put_us = benchmark.stats.stats.median / 10_000 * 1e6

    numbers = {
        "checkpoint": checkpoint_id,
        "workload": f"{prompt_tokens}+{new_tokens}",
        "repetitions": repetitions,
        "plugin_decode_tps": round(plugin_decode, 3),
        "hand_decode_tps": round(hand_decode, 3),
        "decode_ratio": round(plugin_decode / hand_decode, 4),
        "plugin_e2e_tps": round(plugin_e2e, 3),
        "hand_e2e_tps": round(hand_e2e, 3),
        "e2e_ratio": round(plugin_e2e / hand_e2e, 4),
        "hand_e2e_tps_gc_running": round(new_tokens / statistics.median(gc_on_round_s), 3),
        "streamer_put_us": round(put_us, 3),
        "streamer_in_situ_us_per_token": round(in_situ_us, 1),
    }
    benchmark.extra_info["fidelity"] = numbers
    print("\nFIDELITY", numbers)
