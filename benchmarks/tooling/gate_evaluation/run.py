"""Gate evaluation: false-alarm and detection rates of pytest-tee's gate and of pytest-benchmark's compare-fail.

Every session is its own ``python -m pytest`` process, as in real use (base on main, head on the pull request),
measuring ``bench_gate_decode.py`` (decode tok/s of the tiny Qwen2 model on the CPU) into a ``--benchmark-json``
file. Arm A is the code as it is; in arm B ``conftest.py`` adds CPU work to every decoding step in proportion to
the step's own work (``slowdown.py``), so that decoding is 10 % slower however busy the machine is. The proportion
is calibrated first, in one process with rounds with and without the extra work alternating, and recorded.

Sessions run in blocks of four in ABBA or BAAB order (balanced, shuffled with ``--seed``), so slow drift falls on
both arms alike. Each block gives two null pairs — its two A sessions, and its two B sessions (same code on both
sides, so any "regressed" is a false alarm) — and two A/B pairs (each A with its neighbouring B; A is the base).
Within each family every session is used once, so pairs of a family are independent of one another.

Each pair is judged from the two JSON files by

- pytest-tee's gate: ``compare_runs(load_run(base), load_run(head), [("decode_tps", 5.0)])``, counting
  ``regressed``;
- pytest-benchmark's ``--benchmark-compare-fail=median:5%``: ``PercentageRegressionCheck("median", 5)`` on the
  stored ``stats`` of the benchmark (the time of one round: a whole ``generate`` call).

Takes long (``--pairs 100``: 200 sessions); not collected by ``pytest benchmarks/`` and run by nothing in
``tests/``. Per-session files stay in ``--out``; the summary (JSON and markdown) is written there too. Re-running
with the same ``--out`` reuses the calibration and the sessions already measured (resume after an interruption).

    HF_HUB_OFFLINE=1 python benchmarks/tooling/gate_evaluation/run.py --pairs 100 --out /tmp/gate-eval/default
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BENCH_FILE = HERE / "bench_gate_decode.py"
STRETCH_VARIABLE = "PYTEST_TEE_EVAL_STRETCH"  # read by conftest.py
MODEL = "tiny-qwen2"
METRIC = "decode_tps"
THRESHOLD_PCT = 5.0
SLOWDOWN = 0.10  # the injected drop of the decode rate
PROMPT_TOKENS = 128  # --tee-prompt-tokens default
CALIBRATION_PAIRS = 100  # alternating rounds with and without the extra work, per stretch measured
SESSION_TIMEOUT_S = 600
PATTERNS = ("ABBA", "BAAB")


@dataclass(frozen=True)
class Config:
    pairs: int
    rounds: int
    new_tokens: int
    target_ci: float | None
    threads: int | None
    seed: int

    def pytest_args(self) -> list[str]:
        args = [
            f"--tee-models={MODEL}",
            "--tee-device=cpu",
            f"--tee-rounds={self.rounds}",
            f"--tee-new-tokens={self.new_tokens}",
        ]
        if self.target_ci is not None:
            args.append(f"--tee-target-ci={self.target_ci:g}%")
        if self.threads is not None:
            args.append(f"--tee-threads={self.threads}")
        return args


@dataclass
class Session:
    name: str  # b007-2B: block 7, second in the block, arm B
    block: int
    position: int
    arm: str
    path: str
    wall_s: float | None = None
    returncode: int | None = None
    decode_tps: list[float] = field(default_factory=list)
    round_seconds_median: float | None = None  # pytest-benchmark's stats median (one generate call)
    stop_reason: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.decode_tps)


@dataclass(frozen=True)
class Pair:
    kind: str  # "null" (same code on both sides) or "ab" (head slowed by 10 %)
    base: tuple[str, ...]  # one session, or several pooled (interleaved blocks, as ``pytest-tee ab`` does)
    head: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """One way of judging the same sessions: the first ``rounds`` rounds of each, ``sessions`` a side."""

    rounds: int
    sessions: int  # 1: base and head are one session each; 2: two interleaved sessions a side, pooled

    @property
    def name(self) -> str:
        side = "1 session a side" if self.sessions == 1 else f"{self.sessions} interleaved sessions a side, pooled"
        return f"{self.rounds} rounds, {side}"


# ------------------------------------------------------------------------------------------------ sessions


def run_session(config: Config, session: Session, stretch: float, log: Path) -> Session:
    """One pytest process writing ``session.path``; an existing file is reused (resume)."""
    path = Path(session.path)
    if not path.exists():
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            STRETCH_VARIABLE: f"{stretch:.6f}" if session.arm == "B" else "",
            # This checkout's pytest_tee, also when another one is installed (a frozen copy keeps a long campaign
            # safe from edits to the working tree).
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(BENCH_FILE.relative_to(ROOT)),
            "-p",
            "no:cacheprovider",
            "-q",
            *config.pytest_args(),
            f"--benchmark-json={path}",
        ]
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SESSION_TIMEOUT_S, check=False
            )
            session.returncode = completed.returncode
            tail = (completed.stdout + completed.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            session.returncode, tail = -1, f"timed out after {SESSION_TIMEOUT_S} s"
        session.wall_s = time.perf_counter() - started
        _meta_path(path).write_text(json.dumps({"wall_s": session.wall_s, "returncode": session.returncode}) + "\n")
        if not path.exists():
            session.error = f"no results (exit {session.returncode}): {tail}"
            write_log(log, f"{session.name}: FAILED {session.error}")
            return session
    read_session(session)
    return session


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def read_session(session: Session) -> None:
    meta = _meta_path(Path(session.path))
    if session.wall_s is None and meta.exists():
        recorded = json.loads(meta.read_text())
        session.wall_s, session.returncode = recorded.get("wall_s"), recorded.get("returncode")
    try:
        document = json.loads(Path(session.path).read_text())
        (bench,) = document["benchmarks"]
        tee = bench["extra_info"]["tee"]
        session.decode_tps = [float(value) for value in tee["samples"][METRIC]]
        session.round_seconds_median = float(bench["stats"]["median"])
        session.stop_reason = str(tee.get("stop_reason", ""))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        session.error = f"unreadable results: {exc}"


def plan_sessions(config: Config, sessions_dir: Path) -> tuple[list[Session], list[Pair]]:
    """Blocks of ABBA/BAAB (half each, shuffled) and the pairs they give."""
    blocks = math.ceil(config.pairs / 2)
    patterns = [PATTERNS[index % 2] for index in range(blocks)]
    random.Random(config.seed).shuffle(patterns)
    sessions: list[Session] = []
    pairs: list[Pair] = []
    for block, pattern in enumerate(patterns, start=1):
        members = [
            Session(
                name=f"b{block:03d}-{position}{arm}",
                block=block,
                position=position,
                arm=arm,
                path=str(sessions_dir / f"b{block:03d}-{position}{arm}.json"),
            )
            for position, arm in enumerate(pattern, start=1)
        ]
        sessions.extend(members)
        first, second, third, fourth = (member.name for member in members)
        a_side = [member.name for member in members if member.arm == "A"]
        b_side = [member.name for member in members if member.arm == "B"]
        pairs.append(Pair("null", (a_side[0],), (a_side[1],)))  # earlier session is the base
        pairs.append(Pair("null", (b_side[0],), (b_side[1],)))
        # Each A with its neighbour B: positions 1-2 and 3-4; A is always the base.
        for left, right in ((first, second), (third, fourth)):
            base, head = (left, right) if left in a_side else (right, left)
            pairs.append(Pair("ab", (base,), (head,)))
    return sessions, pairs


def pooled_pairs(sessions: Sequence[Session], per_side: int) -> list[Pair]:
    """``per_side`` sessions a side (2 or 4), interleaved, as ``pytest-tee ab --blocks`` would pool them.

    A/B: the A sessions of ``per_side / 2`` neighbouring blocks against their B sessions (each block is ABBA or
    BAAB). Null: of the ``2 × per_side`` A (or B) sessions of ``per_side`` neighbouring blocks, in time order, the
    1st, 4th, 5th, 8th … against the 2nd, 3rd, 6th, 7th … — interleaved the same way. Each session is used once per
    family; incomplete groups at the end are left out.
    """
    blocks: dict[int, list[Session]] = {}
    for session in sessions:
        blocks.setdefault(session.block, []).append(session)
    ordered = [sorted(members, key=lambda s: s.position) for _, members in sorted(blocks.items())]
    pairs = []
    for group in _groups(ordered, per_side // 2):
        members = [s for block in group for s in block]
        pairs.append(
            Pair("ab", tuple(s.name for s in members if s.arm == "A"), tuple(s.name for s in members if s.arm == "B"))
        )
    for group in _groups(ordered, per_side):
        for arm in "AB":
            names = [s.name for block in group for s in block if s.arm == arm]
            first = tuple(name for index, name in enumerate(names) if index % 4 in (0, 3))
            second = tuple(name for index, name in enumerate(names) if index % 4 in (1, 2))
            pairs.append(Pair("null", first, second))
    return pairs


def _groups(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items) - size + 1, size)]


# ------------------------------------------------------------------------------------------------ injection check


def calibrate_injection(config: Config, out: Path, log: Path) -> dict[str, Any]:
    """The stretch (extra work per step) that lowers the decode rate by 10 %, and the drop it really causes.

    Rounds with and without the extra work alternate (ABBA) in one process — the quietest comparison this machine
    allows — and the drop is the median of the paired ratios. The stretch comes from a line fitted to the drops at
    0, half the nominal 1/0.9 − 1 and the nominal; the drop it really gives is measured once more and recorded.
    """
    stored = out / "calibration.json"
    if stored.exists():
        return json.loads(stored.read_text())
    import torch

    from benchmarks.tooling.gate_evaluation.slowdown import DecodeSlowdown, nominal_stretch
    from pytest_tee.checkpoints.catalogue import get
    from pytest_tee.checkpoints.loading import load_model
    from pytest_tee.measure.metrics import round_metrics
    from pytest_tee.measure.timing import RoundRunner, Workload

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    workload = Workload(PROMPT_TOKENS, config.new_tokens, 1)
    loaded = load_model(
        get(MODEL),
        device="cpu",
        dtype="auto",
        weights_mode="auto",
        model_paths={},
        workload=(workload.prompt_tokens, workload.new_tokens, workload.batch),
    )
    generator = torch.Generator().manual_seed(config.seed)
    input_ids = torch.randint(0, int(loaded.model.config.vocab_size), (1, PROMPT_TOKENS), generator=generator)
    runner = RoundRunner(loaded.model, input_ids, torch.ones_like(input_ids), workload, "cpu")

    def decode_rate(hook: DecodeSlowdown | None) -> float:
        handle = loaded.model.register_forward_pre_hook(hook, with_kwargs=True) if hook is not None else None
        try:
            record = runner.run_once()
        finally:
            if handle is not None:
                handle.remove()
        return round_metrics(record.times, prompt_tokens=PROMPT_TOKENS, new_tokens=config.new_tokens, batch=1)[METRIC]

    def measure(stretch: float) -> dict[str, Any]:
        hook = DecodeSlowdown(stretch)
        decode_rate(hook)  # warms the hook's estimate of a step's work
        base, slowed = [], []
        for index in range(CALIBRATION_PAIRS):
            order = (None, hook) if index % 2 == 0 else (hook, None)
            rates = {id(arm): decode_rate(arm) for arm in order}
            base.append(rates[id(None)])
            slowed.append(rates[id(hook)])
        ratio = statistics.median(b / a for a, b in zip(base, slowed, strict=True))
        return {
            "stretch": stretch,
            "drop": 1.0 - ratio,
            "median_decode_tps": {"A": statistics.median(base), "B": statistics.median(slowed)},
            "mean_spin_us": hook.spin_total_s / max(1, hook.steps) * 1e6,
        }

    decode_rate(None)
    target = nominal_stretch(SLOWDOWN)
    # The drop is close to linear in the stretch but not through zero (the hook itself costs a little, and the
    # spin slows the step's own work): measure three stretches, fit a line, and check the stretch it gives.
    steps = []
    for stretch in (0.0, target / 2, target):
        steps.append(measure(stretch))
        write_log(log, f"calibration: stretch {stretch:.3f} gives a {steps[-1]['drop']:.1%} drop")
    slope, intercept = _line([step["stretch"] for step in steps], [step["drop"] for step in steps])
    stretch = (SLOWDOWN - intercept) / slope if slope > 0 else target
    check = measure(stretch)
    result = {
        "target_drop": SLOWDOWN,
        "nominal_stretch": target,
        "stretch": stretch,
        "fit": {"intercept": intercept, "slope": slope},
        "check": check,
        "steps": steps,
        "pairs_per_measurement": CALIBRATION_PAIRS,
        "threads": torch.get_num_threads(),
    }
    stored.write_text(json.dumps(result, indent=2) + "\n")
    write_log(
        log,
        f"calibration: stretch {stretch:.3f} (nominal {target:.3f}) gives a {check['drop']:.1%} drop of the decode "
        f"rate ({check['median_decode_tps']['A']:.0f} → {check['median_decode_tps']['B']:.0f} tok/s)",
    )
    return result


# ------------------------------------------------------------------------------------------------ judging


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    from scipy.stats import linregress

    fit = linregress(xs, ys)
    return float(fit.slope), float(fit.intercept)


def analyses_for(config: Config) -> list[Analysis]:
    """The configuration as run, its shorter round prefixes (what 5 or 10 rounds would have said), and pooling."""
    if config.target_ci is not None:  # adaptive: the rounds are what the stopping rule chose; no prefixes
        return [Analysis(config.rounds, 1), Analysis(config.rounds, 2), Analysis(config.rounds, 4)]
    prefixes = sorted({config.rounds, *(n for n in (5, 10, 20) if n < config.rounds)})
    pooled = [Analysis(n, k) for k in (2, 4) for n in sorted({5, config.rounds})]
    return [Analysis(n, 1) for n in prefixes] + pooled


def judge(pairs: Sequence[Pair], sessions: dict[str, Session], analysis: Analysis, seed: int) -> list[dict[str, Any]]:
    """Each pair's verdict from pytest-tee's gate, and (one session a side) from pytest-benchmark's check."""
    from pytest_benchmark.utils import PercentageRegressionCheck

    from pytest_tee.baseline.compare import compare_runs
    from pytest_tee.errors import InputError

    check = PercentageRegressionCheck("median", int(THRESHOLD_PCT))  # = --benchmark-compare-fail=median:5%
    documents = {name: json.loads(Path(s.path).read_text()) for name, s in sessions.items() if s.ok}
    judged = []
    for pair in pairs:
        row: dict[str, Any] = {"kind": pair.kind, "base": list(pair.base), "head": list(pair.head)}
        if not all(name in documents for name in pair.base + pair.head):
            row["error"] = "a session of this pair has no results"
            judged.append(row)
            continue
        base = pooled_run([documents[name] for name in pair.base], analysis.rounds)
        head = pooled_run([documents[name] for name in pair.head], analysis.rounds)
        try:
            comparison = compare_runs(base, head, [(METRIC, THRESHOLD_PCT)], seed=seed)
        except InputError as exc:
            row["error"] = str(exc)
            judged.append(row)
            continue
        (verdict,) = comparison.verdicts
        row.update(
            {
                "outcome": verdict.outcome,
                "ratio": verdict.ratio,
                "ci95": list(verdict.ci95),
                "p_value": verdict.detail.p_value,
                "n_base": verdict.detail.n_base,
                "n_head": verdict.detail.n_head,
            }
        )
        if analysis.sessions == 1:  # pytest-benchmark compares one stored run with the current session
            base_stats = round_time_stats(documents[pair.base[0]], analysis.rounds)
            head_stats = round_time_stats(documents[pair.head[0]], analysis.rounds)
            row["pytest_benchmark_fails"] = bool(check.fails(head_stats, base_stats))
            row["pytest_benchmark_change_pct"] = check.compute(head_stats, base_stats)
        judged.append(row)
    return judged


def pooled_run(documents: Sequence[dict[str, Any]], rounds: int) -> Any:
    """The first session's run with the decode samples of all of them (their first ``rounds`` rounds each)."""
    from pytest_tee.saved_runs import run_from_document

    document = copy.deepcopy(documents[0])
    tee = document["benchmarks"][0]["extra_info"]["tee"]
    samples = [
        value for doc in documents for value in doc["benchmarks"][0]["extra_info"]["tee"]["samples"][METRIC][:rounds]
    ]
    tee["samples"] = {METRIC: samples}
    return run_from_document(document, label="+".join(str(doc.get("datetime", "")) for doc in documents))


def decode_samples(document: dict[str, Any]) -> list[float]:
    return [float(value) for value in document["benchmarks"][0]["extra_info"]["tee"]["samples"][METRIC]]


def round_time_stats(document: dict[str, Any], rounds: int) -> dict[str, float]:
    """pytest-benchmark's stats median (seconds per round) over the first ``rounds`` rounds."""
    stats = document["benchmarks"][0]["stats"]
    data = stats.get("data") or []
    if len(data) <= rounds or not data:
        return {"median": float(stats["median"])}
    return {"median": statistics.median(data[:rounds])}


def rate(successes: int, trials: int) -> dict[str, Any]:
    """A rate with its Clopper–Pearson (exact) 95 % interval."""
    from scipy.stats import binomtest

    if trials == 0:
        return {"count": 0, "of": 0, "rate": None, "ci95": [None, None]}
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="exact")
    return {"count": successes, "of": trials, "rate": successes / trials, "ci95": [interval.low, interval.high]}


def rates(analysis: Analysis, judged: Sequence[dict[str, Any]]) -> dict[str, Any]:
    outcomes = ("regressed", "improved", "unchanged", "inconclusive")
    valid = [row for row in judged if "error" not in row]
    null = [row for row in valid if row["kind"] == "null"]
    ab = [row for row in valid if row["kind"] == "ab"]
    result: dict[str, Any] = {
        "name": analysis.name,
        "rounds": analysis.rounds,
        "sessions_per_side": analysis.sessions,
        "pairs": {"null": len(null), "ab": len(ab), "errors": [row for row in judged if "error" in row]},
        "pytest_tee": {
            "false_alarm": rate(sum(row["outcome"] == "regressed" for row in null), len(null)),
            "detection": rate(sum(row["outcome"] == "regressed" for row in ab), len(ab)),
            # The gate is symmetric: under "no change" a false `improved` is as likely as a false `regressed`, so
            # the pairs decided either way estimate twice the false-alarm rate with twice the data.
            "null_decided_either_way": rate(
                sum(row["outcome"] in ("regressed", "improved") for row in null), len(null)
            ),
            "null_outcomes": {name: sum(row["outcome"] == name for row in null) for name in outcomes},
            "ab_outcomes": {name: sum(row["outcome"] == name for row in ab) for name in outcomes},
        },
        "pytest_benchmark": None,
    }
    if analysis.sessions == 1:
        result["pytest_benchmark"] = {
            "false_alarm": rate(sum(row["pytest_benchmark_fails"] for row in null), len(null)),
            "detection": rate(sum(row["pytest_benchmark_fails"] for row in ab), len(ab)),
            # With base and head swapped the check would fail on a median more than 5 % faster (-4.76 % as a change).
            "null_fails_either_way": rate(
                sum(row["pytest_benchmark_fails"] or _fails_reversed(row) for row in null), len(null)
            ),
        }
    return result


def _fails_reversed(row: dict[str, Any]) -> bool:
    change = row["pytest_benchmark_change_pct"] / 100.0
    return change > -1.0 and (1.0 / (1.0 + change) - 1.0) * 100.0 > THRESHOLD_PCT


def summarize(
    config: Config,
    calibration: dict[str, Any],
    sessions: list[Session],
    results: Sequence[dict[str, Any]],
    wall_s: float,
) -> dict[str, Any]:
    good = [session for session in sessions if session.ok]
    medians = {arm: [statistics.median(s.decode_tps) for s in good if s.arm == arm] for arm in "AB"}
    round_cv = {
        arm: [statistics.stdev(s.decode_tps) / statistics.fmean(s.decode_tps) for s in good if s.arm == arm]
        for arm in "AB"
    }
    walls = [s.wall_s for s in sessions if s.wall_s is not None]
    rounds = [len(s.decode_tps) for s in good]
    return {
        "config": asdict(config),
        "threshold_pct": THRESHOLD_PCT,
        "model": MODEL,
        "calibration": calibration,
        "session_median_drop": 1.0 - statistics.median(medians["B"]) / statistics.median(medians["A"])
        if medians["A"] and medians["B"]
        else None,
        "sessions": {
            "planned": len(sessions),
            "with_results": len(good),
            "failed": [{"name": s.name, "error": s.error[-300:]} for s in sessions if not s.ok],
            "wall_s_median": statistics.median(walls) if walls else None,
            "wall_s_mean": statistics.fmean(walls) if walls else None,
            "sessions_wall_s": sum(walls),
            "this_invocation_wall_s": wall_s,
            "rounds_median": statistics.median(rounds) if rounds else None,
            "rounds_max": max(rounds) if rounds else None,
        },
        "noise": {
            "round_cv_median": {arm: statistics.median(values) for arm, values in round_cv.items() if values},
            "round_cv_p90": {arm: _quantile(values, 0.9) for arm, values in round_cv.items() if values},
            "session_median_cv": {
                arm: statistics.stdev(values) / statistics.fmean(values)
                for arm, values in medians.items()
                if len(values) > 1
            },
            "session_median_tps": {arm: _spread(values) for arm, values in medians.items() if values},
        },
        "analyses": list(results),
    }


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def markdown(summary: dict[str, Any]) -> str:
    config = summary["config"]
    sessions = summary["sessions"]
    noise = summary["noise"]
    calibration = summary["calibration"]

    def show(entry: dict[str, Any] | None) -> str:
        if entry is None or entry["rate"] is None:
            return "—"
        low, high = entry["ci95"]
        return f"{entry['count']}/{entry['of']} = {entry['rate']:.1%} [{low:.1%}, {high:.1%}]"

    adaptive = f", adaptive to ±{config['target_ci']:g} %" if config["target_ci"] is not None else ""
    threads = config["threads"] if config["threads"] is not None else "default"
    lines = [
        f"## --tee-rounds={config['rounds']}{adaptive}, threads {threads}, {config['new_tokens']} new tokens",
        "",
        "| judged on | pytest-tee false alarms | pytest-tee detection | pytest-benchmark false alarms "
        "| pytest-benchmark detection |",
        "|---|---|---|---|---|",
    ]
    for result in summary["analyses"]:
        pb = result["pytest_benchmark"] or {}
        lines.append(
            f"| {result['name']} | {show(result['pytest_tee']['false_alarm'])} "
            f"| {show(result['pytest_tee']['detection'])} | {show(pb.get('false_alarm'))} "
            f"| {show(pb.get('detection'))} |"
        )
    lines += [
        "",
        "False alarms: `regressed` (pytest-tee, `decode_tps:5%`) or a failed `median:5%` check (pytest-benchmark) "
        "between sessions of the same code; detection: the same with a 10 % slower decode in the head. "
        "95 % Clopper–Pearson intervals. pytest-benchmark cannot pool sessions (—).",
        "",
        "Null pairs that would have failed in either direction (base and head swapped too; half of it estimates "
        "the false-alarm rate with twice the data):",
        "",
    ]
    for result in summary["analyses"]:
        pb = result["pytest_benchmark"] or {}
        lines.append(
            f"- {result['name']}: pytest-tee {show(result['pytest_tee']['null_decided_either_way'])}; "
            f"pytest-benchmark {show(pb.get('null_fails_either_way'))}"
        )
    lines += [
        "",
        "pytest-tee outcomes (null pairs | A/B pairs):",
        "",
    ]
    for result in summary["analyses"]:
        lines.append(
            f"- {result['name']}: {_outcomes(result['pytest_tee']['null_outcomes'])} | "
            f"{_outcomes(result['pytest_tee']['ab_outcomes'])}"
        )
    lines += [
        "",
        f"- sessions: {sessions['with_results']} of {sessions['planned']} with results; "
        f"{sessions['wall_s_median']:.1f} s per session (median; mean {sessions['wall_s_mean']:.1f} s), "
        f"{sessions['sessions_wall_s'] / 60:.1f} min in all; measured rounds per session: median "
        f"{sessions['rounds_median']}, max {sessions['rounds_max']}",
        "- per-round CV of decode tok/s within a session (median / 90th percentile over sessions): "
        + ", ".join(
            f"{arm} {noise['round_cv_median'][arm]:.1%} / {noise['round_cv_p90'][arm]:.1%}"
            for arm in noise["round_cv_median"]
        ),
        "- CV of the session medians across sessions: "
        + ", ".join(f"{arm} {value:.1%}" for arm, value in noise["session_median_cv"].items())
        + "; session medians (min / median / max tok/s): "
        + ", ".join(
            f"{arm} {spread['min']:.0f} / {spread['median']:.0f} / {spread['max']:.0f}"
            for arm, spread in noise["session_median_tps"].items()
        ),
        f"- injected slowdown: extra work {calibration['stretch']:.3f} × each decoding step (nominal "
        f"{calibration['nominal_stretch']:.3f}), a {calibration['check']['drop']:.1%} drop of the decode rate in "
        f"alternating rounds in one process (median of {calibration['pairs_per_measurement']} paired ratios); "
        f"B session medians against A's: {summary['session_median_drop']:.1%} lower (median of each arm)",
    ]
    return "\n".join(lines) + "\n"


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items())


# ------------------------------------------------------------------------------------------------ main


def write_log(log: Path, message: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, file=sys.stderr, flush=True)
    with log.open("a") as handle:
        handle.write(line + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100, help="null pairs and A/B pairs, each (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="--tee-rounds per session (default 5)")
    parser.add_argument("--new-tokens", type=int, default=32, help="--tee-new-tokens (default 32)")
    parser.add_argument("--target-ci", type=float, default=None, help="--tee-target-ci PCT: adaptive rounds")
    parser.add_argument("--threads", type=int, default=None, help="--tee-threads N (default: torch's default)")
    parser.add_argument("--out", type=Path, required=True, help="folder for session files, log and summary")
    parser.add_argument("--seed", type=int, default=0, help="block order shuffle and the gate's bootstrap")
    args = parser.parse_args(argv)
    for name in ("pairs", "rounds", "new_tokens", "threads"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "new_tokens" else 1):
            parser.error(f"--{name.replace('_', '-')}={value}: expected a whole number of at least 1 (2 for tokens)")
    if args.target_ci is not None and not args.target_ci > 0:
        parser.error(f"--target-ci={args.target_ci}: expected a percentage above 0, e.g. 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped with SIGTERM: raise, so that subprocess.run kills the running session instead of orphaning it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if str(ROOT) not in sys.path:  # run as a script: the repository's packages (benchmarks.…, pytest_tee)
        sys.path.insert(0, str(ROOT))
    config = Config(args.pairs, args.rounds, args.new_tokens, args.target_ci, args.threads, args.seed)
    out: Path = args.out
    sessions_dir = out / "sessions"
    sessions_dir.mkdir(parents=True, exist_ok=True)
    log = out / "progress.log"
    config_file = out / "config.json"
    if config_file.exists() and json.loads(config_file.read_text()) != asdict(config):
        raise SystemExit(f"{out} holds a run with another configuration ({config_file}); use another --out")
    config_file.write_text(json.dumps(asdict(config), indent=2) + "\n")
    started = time.perf_counter()
    write_log(log, f"config {asdict(config)}")
    calibration = calibrate_injection(config, out, log)
    sessions, pairs = plan_sessions(config, sessions_dir)
    for index, session in enumerate(sessions, start=1):
        fresh = not Path(session.path).exists()
        run_session(config, session, calibration["stretch"], log)
        if fresh and session.ok:
            write_log(
                log,
                f"{index}/{len(sessions)} {session.name}: {session.wall_s:.1f} s, "
                f"median {statistics.median(session.decode_tps):.1f} tok/s over {len(session.decode_tps)} rounds",
            )
    by_name = {session.name: session for session in sessions}
    results, details = [], {}
    for analysis in analyses_for(config):
        chosen = pairs if analysis.sessions == 1 else pooled_pairs(sessions, analysis.sessions)
        judged = judge(chosen, by_name, analysis, config.seed)
        results.append(rates(analysis, judged))
        details[analysis.name] = judged
    summary = summarize(config, calibration, sessions, results, time.perf_counter() - started)
    (out / "pairs.json").write_text(json.dumps(details, indent=1) + "\n")
    (out / "sessions.json").write_text(json.dumps([asdict(session) for session in sessions], indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(summary)
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
