"""Rounds: exact token counts, warmup kept apart, fixed and adaptive stopping with a recorded reason."""

from __future__ import annotations

import pytest
import torch

from pytest_tee.measure.metrics import RoundError
from pytest_tee.measure.rounds import RoundLog, RoundPlan
from pytest_tee.measure.timing import RoundRunner, TokenClock, Workload, generate_kwargs
from tests.fakes.fake_model import FakeClock, FakeGenerator


def runner_for(model: FakeGenerator, workload: Workload) -> RoundRunner:
    ids = torch.ones(workload.batch, workload.prompt_tokens, dtype=torch.long)
    return RoundRunner(model, ids, torch.ones_like(ids), workload, "cpu", clock=model.clock)


def test_generate_is_asked_for_exactly_n_greedy_tokens():
    kwargs = generate_kwargs(7)
    assert kwargs["max_new_tokens"] == kwargs["min_new_tokens"] == 7
    assert kwargs["do_sample"] is False
    assert kwargs["num_beams"] == 1
    assert "eos_token_id" in kwargs
    assert kwargs["eos_token_id"] is None


def test_token_clock_ignores_the_prompt_put():
    ticks = iter([1.0, 2.0, 3.0])
    clock = TokenClock(lambda: next(ticks))
    clock.put("prompt")
    clock.put("t1")
    clock.put("t2")
    clock.end()
    assert clock.stamps == [1.0, 2.0]
    assert clock.ended


@pytest.mark.slow
def test_one_round_from_a_fake_model():
    clock = FakeClock()
    model = FakeGenerator(clock, prefill_s=0.5, step_s=0.1)
    workload = Workload(prompt_tokens=50, new_tokens=5, batch=2)
    log = RoundLog(workload, RoundPlan(rounds=1, warmup=0))
    values = log.add(runner_for(model, workload).run_once())
    # The first token lands after prefill; each later one 0.1 s after the one before; generate returns 0.1 s after.
    assert values["ttft_s"] == pytest.approx(0.5)
    assert values["decode_tps"] == pytest.approx(2 * 4 / 0.4)
    assert values["e2e_tps"] == pytest.approx(2 * 5 / 1.0)
    assert values["prefill_tps"] == pytest.approx(2 * 50 / 0.5)
    assert model.calls[0]["min_new_tokens"] == 5


@pytest.mark.slow
def test_early_stop_is_an_error_not_a_shorter_workload():
    clock = FakeClock()
    model = FakeGenerator(clock, steps=3)
    with pytest.raises(RoundError, match="produced 3 decoding steps, expected exactly 8"):
        runner_for(model, Workload(10, 8, 1)).run_once()


@pytest.mark.slow
def test_warmup_rounds_are_kept_apart():
    clock = FakeClock()
    model = FakeGenerator(clock)
    workload = Workload(10, 4, 1)
    log = RoundLog(workload, RoundPlan(rounds=2, warmup=2))
    runner = runner_for(model, workload)
    model.step_s = 0.5  # slow warmup (first-touch costs)
    log.add(runner.run_once())
    log.add(runner.run_once())
    model.step_s = 0.1
    log.add(runner.run_once())
    assert log.decide_stop(1.0) is None
    log.add(runner.run_once())
    assert log.decide_stop(2.0) == "fixed: 2 rounds"
    assert log.samples("decode_tps", warmup=True) == pytest.approx([2.0, 2.0])
    assert log.samples("decode_tps") == pytest.approx([10.0, 10.0])


def feed(log: RoundLog, decode_values: list[float]) -> None:
    for value in decode_values:
        log.measured_rounds.append({"decode_tps": value, "e2e_tps": value, "ttft_s": 0.1})


def test_adaptive_stops_when_the_ci_is_tight():
    log = RoundLog(Workload(10, 8, 1), RoundPlan(rounds=6, warmup=0, target_ci_pct=2.0, max_rounds=50))
    feed(log, [10.0, 10.1, 9.9, 10.0, 10.05, 9.95])
    reason = log.decide_stop(5.0)
    assert reason is not None
    assert reason.startswith("precision")


def test_adaptive_keeps_going_while_noisy_then_hits_the_cap():
    log = RoundLog(Workload(10, 8, 1), RoundPlan(rounds=5, warmup=0, target_ci_pct=1.0, max_rounds=8))
    feed(log, [10.0, 14.0, 7.0, 12.0, 9.0])
    assert log.decide_stop(5.0) is None
    feed(log, [13.0, 8.0, 11.0])
    assert log.decide_stop(6.0) == "round cap: 8 rounds"


def test_adaptive_respects_the_time_budget():
    log = RoundLog(Workload(10, 8, 1), RoundPlan(rounds=3, warmup=0, target_ci_pct=0.5, max_time_s=30.0))
    feed(log, [10.0, 14.0, 7.0])
    assert log.decide_stop(29.0) is None
    assert log.decide_stop(31.0).startswith("time budget: 30 s")


def test_adaptive_continues_while_the_gate_is_undecided():
    log = RoundLog(Workload(10, 8, 1), RoundPlan(rounds=4, warmup=0, target_ci_pct=5.0, max_rounds=6))
    feed(log, [10.0, 10.1, 9.9, 10.0])
    assert log.decide_stop(1.0, gate_check=lambda _log: "verdict inconclusive") is None
    assert log.decide_stop(1.0, gate_check=lambda _log: None).startswith("precision")
    feed(log, [10.0, 10.0])
    assert "verdict inconclusive" in log.decide_stop(1.0, gate_check=lambda _log: "verdict inconclusive")


def test_minimum_rounds_come_first_in_adaptive_mode():
    log = RoundLog(Workload(10, 8, 1), RoundPlan(rounds=5, warmup=0, target_ci_pct=50.0))
    feed(log, [10.0, 10.0])
    assert log.decide_stop(1000.0) is None
