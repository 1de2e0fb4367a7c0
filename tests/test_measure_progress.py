"""Progress by default: a live line on a terminal, a line every ~12 s in logs, per round with -v, none with -q."""

from __future__ import annotations

import pytest

from pytest_tee.measure import progress
from pytest_tee.measure.progress import ProgressWriter, RoundProgress


def update(done: int, *, warmup: bool = False, finished: bool = False, cap: int = 5) -> RoundProgress:
    return RoundProgress(
        checkpoint="r1-distill-qwen-1.5b",
        warmup=warmup,
        done=done,
        planned=1 if warmup else 5,
        cap=1 if warmup else cap,
        metric="decode_tps",
        value=10.0 + done,
        median=None if warmup else 10.5,
        ttft_s=0.25,
        left_s=None if finished else 30.0 * (5 - done),
        finished=finished,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_status_line_names_checkpoint_round_median_and_time_left() -> None:
    assert update(2).status_line() == "[tee] r1-distill-qwen-1.5b: round 2/5 decode_tps, median 10.5 tok/s, ~90 s left"
    assert update(1, warmup=True).status_line().endswith("warmup 1/1 decode_tps, ~2 min left")
    assert "round 5/5-50" in update(5, cap=50).status_line()
    assert "(to the minimum)" in update(3, cap=50).status_line()
    assert update(5, finished=True).status_line().endswith("median 10.5 tok/s, done")


def test_lines_mode_writes_at_most_every_interval_and_nothing_for_a_short_benchmark() -> None:
    clock, lines = Clock(), []
    writer = ProgressWriter("lines", lines.append, clock=clock)
    for clock.now in (0.0, 5.0, 11.0):
        writer(update(1))
    assert lines == []  # under 12 s: nothing
    for clock.now in (13.0, 20.0, 25.5, 26.0):
        writer(update(2))
    assert len(lines) == 2  # at 13 s and 26 s
    assert lines[0].startswith("[tee] r1-distill-qwen-1.5b: round 2/5")


def test_live_mode_rewrites_one_line_and_leaves_the_last_standing() -> None:
    events: list[str] = []
    writer = ProgressWriter(
        "live", events.append, rewrite=lambda text: events.append("\r" + text), start_live=lambda: events.append("\n")
    )
    for done in (1, 2):
        writer(update(done))
    writer(update(5, finished=True))
    assert events[0] == "\n"  # once, before the first live line
    assert [event[:1] for event in events[1:]] == ["\r"] * 3
    assert events[-1].endswith("done")


def test_rounds_mode_is_the_verbose_per_round_line() -> None:
    lines: list[str] = []
    writer = ProgressWriter("rounds", lines.append)
    writer(update(1, warmup=True))
    writer(update(1))
    writer(update(5, finished=True))
    assert lines == [
        "    [tee] warmup 1/1: decode_tps 11.00 tok/s, ttft 250 ms",
        "    [tee] round 1/5: decode_tps 11.00 tok/s, ttft 250 ms",
    ]
    with pytest.raises(ValueError, match="progress mode 'loud'"):
        ProgressWriter("loud", lines.append)


def test_default_run_in_a_log_shows_progress_lines(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)  # every round, instead of every 12 s
    pytester.makepyfile("def test_a(tokens_per_second):\n    tokens_per_second(prompt_tokens=8, new_tokens=3)\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tee-models=tiny-qwen2", "--tee-rounds=3")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["[[]tee[]] tiny-qwen2: round 3/3 decode_tps, median * tok/s, ~0 s left"])
    assert "[tee] round" not in result.stdout.str()  # the -v lines only with -v
