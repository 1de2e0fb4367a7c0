"""Re-judge the gate evaluation's 200 real sessions offline with the session-level models.

The sessions are those ``run.py --pairs 100 --rounds 20 --threads 1`` measured (50 blocks of four, ABBA or BAAB;
arm A is the code as it is, arm B decodes ~10 % slower). Nothing is measured here: every verdict comes from the
sessions' stored rounds, judged by pytest-tee's own functions (``pytest_tee.baseline.sessions``), with
pytest-benchmark's ``--benchmark-compare-fail=median:5%`` beside it where it applies. Three ways of judging:

(a) one session a side, nothing stored: the fallback rule (``models.decide`` without history). Pairs as in
    ``run.py``: per block the two A sessions and the two B sessions (null: same code), and each A with its
    neighbouring B (A the base). Each session is used once per family. Also every ordered pair of same-arm
    sessions, however far apart in time (a stored baseline from earlier), as a harsher check.
(b) a head session against stored runs (``models.decide`` with history): the baseline is the latest A session
    before the head, the history the m (5 or 10) latest A sessions before it, the baseline included. Heads: every
    A session with m A sessions before it (null), every B session with m A sessions before it (detection).
(c) ABBA blocks (``models.blocks``): k of the 50 real blocks drawn at random (detection), or k of 50 null blocks
    — two neighbouring real blocks give one per arm: that arm's four sessions in time order, the 1st and 4th as
    base, the 2nd and 3rd as head. Draws overlap (50 blocks only), so the rates are estimates; their uncertainty
    comes from the 50 blocks themselves, so the interval is ±1.96 jackknife standard errors (leave one block out).
    The block rule is vectorised here and checked against ``decide_blocks`` on the drawn subsets.

The compact per-session data (rounds of decode tok/s and pytest-benchmark's time per round) live in
``results/r20-threads1-sessions.json``, so this reproduces without the raw session files:

    python benchmarks/tooling/gate_evaluation/reanalyze.py                      # from the compact file
    python benchmarks/tooling/gate_evaluation/reanalyze.py --raw /tmp/gate-eval/r20-threads1/sessions.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RESULTS = HERE / "results"
COMPACT = RESULTS / "r20-threads1-sessions.json"
METRIC = "decode_tps"
THRESHOLD_PCT = 5.0
ALPHA = 0.01
ROUND_PREFIXES = (5, 10, 20)
HISTORY_SIZES = (5, 10)
BLOCK_COUNTS = (4, 6, 8, 10, 12, 16, 18)
DRAWS = 20_000  # random block subsets per cell (the block rule is vectorised; 150 are re-judged by decide_blocks)
CHECKED_DRAWS = 150
SEED = 0

Session = dict[str, Any]  # name, block, position, arm, decode_tps (rounds), round_s (pytest-benchmark per round)


# ------------------------------------------------------------------------------------------------ data


def compact_from_raw(raw: Path) -> list[Session]:
    """The compact per-session records from ``run.py``'s ``sessions.json`` and the session files it names."""
    sessions = []
    for entry in json.loads(raw.read_text()):
        document = json.loads(Path(entry["path"]).read_text())
        (bench,) = document["benchmarks"]
        sessions.append(
            {
                "name": entry["name"],
                "block": entry["block"],
                "position": entry["position"],
                "arm": entry["arm"],
                "decode_tps": [round(float(v), 3) for v in bench["extra_info"]["tee"]["samples"][METRIC]],
                "round_s": [round(float(v), 7) for v in bench["stats"]["data"]],
            }
        )
    return sorted(sessions, key=lambda s: (s["block"], s["position"]))


def load_sessions(args: argparse.Namespace) -> list[Session]:
    if args.raw is not None:
        sessions = compact_from_raw(args.raw)
        text = json.dumps({"source": "run.py --pairs 100 --rounds 20 --threads 1", "sessions": sessions})
        COMPACT.write_text(text.replace('}, {"name"', '},\n{"name"') + "\n")
        return sessions
    return json.loads(COMPACT.read_text())["sessions"]


def blocks_of(sessions: Sequence[Session]) -> list[list[Session]]:
    grouped: dict[int, list[Session]] = {}
    for session in sessions:
        grouped.setdefault(session["block"], []).append(session)
    return [sorted(members, key=lambda s: s["position"]) for _, members in sorted(grouped.items())]


# ------------------------------------------------------------------------------------------------ judging


def rate(successes: int, trials: int) -> dict[str, Any]:
    """A rate with its Clopper–Pearson (exact) 95 % interval."""
    from scipy.stats import binomtest

    if trials == 0:
        return {"count": 0, "of": 0, "rate": None, "ci95": [None, None]}
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="exact")
    return {"count": successes, "of": trials, "rate": successes / trials, "ci95": [interval.low, interval.high]}


def pb_fails(base: Session, head: Session, rounds: int) -> bool:
    """pytest-benchmark's ``--benchmark-compare-fail=median:5%`` on the time per round (first ``rounds``)."""
    from pytest_benchmark.utils import PercentageRegressionCheck

    check = PercentageRegressionCheck("median", int(THRESHOLD_PCT))
    return bool(
        check.fails(
            {"median": statistics.median(head["round_s"][:rounds])},
            {"median": statistics.median(base["round_s"][:rounds])},
        )
    )


def stored_verdict(base: Session, head: Session, rounds: int, history: Sequence[Session] = ()) -> Any:
    from pytest_tee.baseline.models import Evidence, Rule, decide

    evidence = Evidence(
        "decode",
        METRIC,
        base=base["decode_tps"][:rounds],
        head=head["decode_tps"][:rounds],
        history=[s["decode_tps"][:rounds] for s in history],
    )
    return decide(evidence, Rule(THRESHOLD_PCT, True, ALPHA))


def spread_alone_verdict(base: Session, head: Session, rounds: int, history: Sequence[Session]) -> Any:
    """The history rule as first proposed: the stored runs' spread alone (SE = SD · √2, m − 1 df), without the
    floor ``decide_history`` puts under it from the two sessions' own rounds. For comparison only.
    """
    from pytest_tee.baseline.models import Evidence, Rule, history
    from pytest_tee.baseline.models.sessions import log_level, t_verdict
    from pytest_tee.records import ModelDetail

    levels = [log_level(s["decode_tps"][:rounds]) for s in history]
    return t_verdict(
        Evidence("decode", METRIC),
        Rule(THRESHOLD_PCT, True, ALPHA),
        statistics.median(base["decode_tps"][:rounds]),
        statistics.median(head["decode_tps"][:rounds]),
        estimate=log_level(head["decode_tps"][:rounds]) - log_level(base["decode_tps"][:rounds]),
        se=statistics.stdev(levels) * math.sqrt(2.0),
        df=len(levels) - 1,
        model="history",
        detail=ModelDetail(method="history, stored spread alone", sessions_base=len(levels)),
        hint_rule=history.hint,
    )


def spread_alone(pairs: Sequence[tuple[Session, Session, Sequence[Session]]], rounds: int) -> dict[str, Any]:
    hits = sum(
        spread_alone_verdict(base, head, rounds, history).outcome == "regressed" for base, head, history in pairs
    )
    return rate(hits, len(pairs))


def judged(pairs: Sequence[tuple[Session, Session, Sequence[Session]]], rounds: int) -> dict[str, Any]:
    outcomes = {"regressed": 0, "improved": 0, "unchanged": 0, "inconclusive": 0}
    pb = 0
    for base, head, history in pairs:
        outcomes[stored_verdict(base, head, rounds, history).outcome] += 1
        pb += pb_fails(base, head, rounds)
    return {
        "outcomes": outcomes,
        "regressed": rate(outcomes["regressed"], len(pairs)),
        "pb_fails": rate(pb, len(pairs)),
    }


def single_pairs(sessions: Sequence[Session]) -> dict[str, list[tuple[Session, Session, Sequence[Session]]]]:
    """(a): per block two null pairs (A with A, B with B; the earlier the base) and two A/B pairs (A the base)."""
    null, ab = [], []
    for block in blocks_of(sessions):
        for arm in "AB":
            first, second = (s for s in block if s["arm"] == arm)
            null.append((first, second, ()))
        for left, right in ((block[0], block[1]), (block[2], block[3])):
            base, head = (left, right) if left["arm"] == "A" else (right, left)
            ab.append((base, head, ()))
    return {"null": null, "ab": ab}


def all_distance_null(sessions: Sequence[Session], rounds: int) -> dict[str, Any]:
    """(a), harsher: every ordered pair of different sessions of the same arm (each session in ~200 pairs)."""
    regressed = pairs = 0
    for arm in "AB":
        members = [s for s in sessions if s["arm"] == arm]
        for base in members:
            for head in members:
                if base is not head:
                    pairs += 1
                    regressed += stored_verdict(base, head, rounds).outcome == "regressed"
    return {"regressed": regressed, "of": pairs, "rate": regressed / pairs}


def history_pairs(
    sessions: Sequence[Session], size: int
) -> dict[str, list[tuple[Session, Session, Sequence[Session]]]]:
    """(b): the baseline is the latest A session before the head; the history the ``size`` latest, newest first."""
    null, ab = [], []
    earlier_a: list[Session] = []
    for session in sessions:  # in time order
        if len(earlier_a) >= size:
            history = earlier_a[-size:][::-1]
            (null if session["arm"] == "A" else ab).append((history[0], session, history))
        if session["arm"] == "A":
            earlier_a.append(session)
    return {"null": null, "ab": ab}


# ------------------------------------------------------------------------------------------------ blocks


def block_differences(sessions: Sequence[Session], rounds: int) -> dict[str, Any]:
    """Per real block d (B − A, mean log levels) and per null block d (same arm, 1st+4th against 2nd+3rd)."""
    import numpy as np

    def level(session: Session) -> float:
        return math.log(statistics.median(session["decode_tps"][:rounds]))

    blocks = blocks_of(sessions)
    real = [
        statistics.fmean(level(s) for s in block if s["arm"] == "B")
        - statistics.fmean(level(s) for s in block if s["arm"] == "A")
        for block in blocks
    ]
    null = []
    for first, second in zip(blocks[0::2], blocks[1::2], strict=True):
        for arm in "AB":
            s1, s2, s3, s4 = (level(s) for s in first + second if s["arm"] == arm)
            null.append((s2 + s3) / 2 - (s1 + s4) / 2)
    return {"ab": np.array(real), "null": np.array(null), "blocks": blocks}


def block_outcomes(d: Any) -> dict[str, Any]:
    """The block model's rule, vectorised over rows of block differences (same as decide_blocks + classify)."""
    import numpy as np
    from scipy.special import stdtr, stdtrit

    k = d.shape[1]
    mean = d.mean(axis=1)
    se = d.std(axis=1, ddof=1) / math.sqrt(k)
    half = stdtrit(k - 1, 0.975) * se
    ratio, low, high = np.exp(mean), np.exp(mean - half), np.exp(mean + half)
    p = stdtr(k - 1, -np.abs(mean) / se)
    limit = THRESHOLD_PCT / 100.0
    beyond = np.abs(ratio - 1.0) > limit + 1e-9
    excludes = np.where(ratio < 1.0, high < 1.0, low > 1.0)
    decided = beyond & excludes & (p <= ALPHA)
    return {
        "regressed": decided & (ratio < 1.0),
        "improved": decided & (ratio > 1.0),
        "unchanged": ~decided & (low >= 1.0 - limit - 1e-9) & (high <= 1.0 + limit + 1e-9),
    }


def block_rates(sessions: Sequence[Session], rounds: int, draws: int, seed: int) -> list[dict[str, Any]]:
    import numpy as np

    diffs = block_differences(sessions, rounds)
    rng = np.random.default_rng(seed)
    results = []
    for k in BLOCK_COUNTS:
        row: dict[str, Any] = {"blocks": k, "sessions": 4 * k, "rounds": rounds}
        for kind in ("null", "ab"):
            pool = diffs[kind]
            picks = np.argsort(rng.random((draws, pool.size)), axis=1)[:, :k]  # k distinct blocks per draw
            outcome = block_outcomes(pool[picks])
            if kind == "ab":  # the vectorised rule must agree with pytest-tee's own function on the real blocks
                _check_against_decide_blocks(
                    diffs["blocks"], picks[:CHECKED_DRAWS], outcome["regressed"][:CHECKED_DRAWS], rounds
                )
            # The rate is a U-statistic over the 50 blocks: jackknife its standard error, each leave-one-out rate
            # taken from the draws that happen not to contain that block (same draws: little Monte-Carlo noise).
            leave_one_out = [
                float(outcome["regressed"][~(picks == left_out).any(axis=1)].mean()) for left_out in range(pool.size)
            ]
            n = pool.size
            se = math.sqrt((n - 1) / n * float(np.sum((np.array(leave_one_out) - np.mean(leave_one_out)) ** 2)))
            centre = float(outcome["regressed"].mean())
            row[kind] = {
                "regressed": centre,
                "jackknife_se": se,
                "interval": [max(0.0, centre - 1.96 * se), min(1.0, centre + 1.96 * se)],
                "decided_either_way": float((outcome["regressed"] | outcome["improved"]).mean()),
                "unchanged": float(outcome["unchanged"].mean()),
            }
        results.append(row)
    return results


def _check_against_decide_blocks(blocks: Sequence[list[Session]], picks: Any, expected: Any, rounds: int) -> None:
    from pytest_tee.baseline.models import Evidence, Rule
    from pytest_tee.baseline.models import blocks as blocks_model

    for chosen, regressed in zip(picks, expected, strict=True):
        sessions = [
            (
                [s["decode_tps"][:rounds] for s in blocks[index] if s["arm"] == "A"],
                [s["decode_tps"][:rounds] for s in blocks[index] if s["arm"] == "B"],
            )
            for index in chosen
        ]
        verdict = blocks_model.decide(Evidence("decode", METRIC, blocks=sessions), Rule(THRESHOLD_PCT, True, ALPHA))
        if (verdict.outcome == "regressed") != bool(regressed):
            raise SystemExit(f"vectorised block rule disagrees with decide_blocks on blocks {list(chosen)}")


# ------------------------------------------------------------------------------------------------ noise


def noise(sessions: Sequence[Session]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for rounds in ROUND_PREFIXES:
        levels = {
            arm: [math.log(statistics.median(s["decode_tps"][:rounds])) for s in sessions if s["arm"] == arm]
            for arm in "AB"
        }
        round_sd = [float(np.std(np.log(s["decode_tps"][:rounds]), ddof=1)) for s in sessions]
        diffs = block_differences(sessions, rounds)
        out[str(rounds)] = {
            "session_level_log_sd": {arm: statistics.stdev(values) for arm, values in levels.items()},
            "round_log_sd_median": statistics.median(round_sd),
            "round_log_sd_rms": math.sqrt(statistics.fmean(v * v for v in round_sd)),
            "block_difference_sd": {"ab": float(diffs["ab"].std(ddof=1)), "null": float(diffs["null"].std(ddof=1))},
            "drop_b_against_a": 1.0 - math.exp(float(diffs["ab"].mean())),
        }
    return out


# ------------------------------------------------------------------------------------------------ report


def analyse(sessions: Sequence[Session], draws: int, seed: int) -> dict[str, Any]:
    single = single_pairs(sessions)
    result: dict[str, Any] = {"noise": noise(sessions), "single": [], "history": [], "blocks": []}
    for rounds in ROUND_PREFIXES:
        result["single"].append(
            {
                "rounds": rounds,
                "null": judged(single["null"], rounds),
                "ab": judged(single["ab"], rounds),
                "null_all_distances": all_distance_null(sessions, rounds),
            }
        )
        for size in HISTORY_SIZES:
            pairs = history_pairs(sessions, size)
            result["history"].append(
                {
                    "rounds": rounds,
                    "stored": size,
                    "null": judged(pairs["null"], rounds),
                    "ab": judged(pairs["ab"], rounds),
                    "spread_alone": {
                        "null": spread_alone(pairs["null"], rounds),
                        "ab": spread_alone(pairs["ab"], rounds),
                    },
                }
            )
        result["blocks"] += block_rates(sessions, rounds, draws, seed + rounds)
    return result


def show(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['count']}/{entry['of']} = {entry['rate']:.1%} [{low:.1%}, {high:.1%}]"


def markdown(result: dict[str, Any], draws: int) -> str:
    lines = [
        "## Session-level gate on the 200 real sessions (`--tee-threads=1`, 20 rounds; offline re-analysis)",
        "",
        "### (a) One session a side, nothing stored: fallback rule",
        "",
        "| rounds | false alarms (null pairs) | detection (A/B pairs) | pytest-benchmark false alarms "
        "| pytest-benchmark detection | false alarms, all same-arm pairs at any distance |",
        "|---:|---|---|---|---|---|",
    ]
    for row in result["single"]:
        far = row["null_all_distances"]
        lines.append(
            f"| {row['rounds']} | {show(row['null']['regressed'])} | {show(row['ab']['regressed'])} "
            f"| {show(row['null']['pb_fails'])} | {show(row['ab']['pb_fails'])} "
            f"| {far['regressed']}/{far['of']} = {far['rate']:.2%} |"
        )
    lines += [
        "",
        "### (b) One head session against stored runs: history rule",
        "",
        "| rounds | stored runs | false alarms (A heads) | detection (B heads) | stored spread alone: false alarms "
        "| stored spread alone: detection | pytest-benchmark false alarms | pytest-benchmark detection |",
        "|---:|---:|---|---|---|---|---|---|",
    ]
    for row in result["history"]:
        alone = row["spread_alone"]
        lines.append(
            f"| {row['rounds']} | {row['stored']} | {show(row['null']['regressed'])} | {show(row['ab']['regressed'])} "
            f"| {show(alone['null'])} | {show(alone['ab'])} "
            f"| {show(row['null']['pb_fails'])} | {show(row['ab']['pb_fails'])} |"
        )
    lines += [
        "",
        f"### (c) ABBA blocks: {draws} random subsets of the 50 blocks per cell",
        "",
        "| rounds | blocks (sessions) | false alarms | detection | null decided either way | null unchanged |",
        "|---:|---:|---|---|---:|---:|",
    ]
    for row in result["blocks"]:
        null, ab = row["null"], row["ab"]
        lines.append(
            f"| {row['rounds']} | {row['blocks']} ({row['sessions']}) | {null['regressed']:.1%} "
            f"[{null['interval'][0]:.1%}, {null['interval'][1]:.1%}] | {ab['regressed']:.1%} "
            f"[{ab['interval'][0]:.1%}, {ab['interval'][1]:.1%}] | {null['decided_either_way']:.1%} "
            f"| {null['unchanged']:.1%} |"
        )
    lines += [
        "",
        "Draws overlap (there are only 50 blocks), so block rates are estimates; their interval is ±1.96 jackknife "
        "standard errors (leave one of the 50 blocks out), a rough guide. Null blocks are built from two neighbouring "
        "real blocks (one per arm), so they span twice the time of a real block. (a) and (b): 95 % Clopper–Pearson "
        "intervals; in (b) heads share history sessions, so those intervals are approximate. pytest-benchmark cannot "
        "pool sessions, so it has no block column.",
        "",
        "Noise (log scale):",
        "",
    ]
    for rounds, entry in result["noise"].items():
        lines.append(
            f"- {rounds} rounds: session levels SD A {entry['session_level_log_sd']['A']:.3f}, "
            f"B {entry['session_level_log_sd']['B']:.3f}; rounds within a session SD median "
            f"{entry['round_log_sd_median']:.3f} (RMS {entry['round_log_sd_rms']:.3f}); block differences SD "
            f"{entry['block_difference_sd']['ab']:.3f} (A/B), {entry['block_difference_sd']['null']:.3f} (null); "
            f"B against A {entry['drop_b_against_a']:.1%} lower"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, default=None, help="run.py's sessions.json: rebuild the compact file")
    parser.add_argument("--draws", type=int, default=DRAWS, help=f"random block subsets per cell (default {DRAWS})")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sessions = load_sessions(args)
    result = analyse(sessions, args.draws, SEED)
    (RESULTS / "reanalysis.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result, args.draws)
    (RESULTS / "reanalysis.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
