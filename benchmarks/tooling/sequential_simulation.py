"""Simulation of sequential ``pytest-tee ab``: false alarms, detection and blocks to a verdict.

Each simulated run is a sequence of per-block differences d (mean log head levels − mean log base levels of an
ABBA block) for a true change of 0, 5, 10, 20 or 40 % (a drop in decode tok/s). After every block from the third,
the sequential rule (``pytest_tee.baseline.sequential``: group-sequential t-test with Lan–DeMets α spending,
repeated 95 % CIs, outcome by ``gate.classify``'s rule) decides ``regressed``, ``improved``, ``unchanged`` or
goes on; at the maximum (18 blocks, ``ab``'s default) whatever is undecided is ``inconclusive``. Beside it the
fixed rule ``ab`` used before: always 18 blocks, one t-test at the end.

Noise, as measured on this machine (``gate_evaluation/results/reanalysis.md``; 200 real sessions of the tiny
model, 5 rounds a session):

- ``normal``: d ~ N(log(1 − change), σ) with σ = 0.081, the largest block SD measured there;
- ``real``: d drawn with replacement from the 50 real null blocks (same code on both sides; centred on 0) plus
  log(1 − change) — the real shape of the noise, tails included;
- ``t3``: Student t with 3 df scaled to SD 0.081 — heavier tails than anything measured;
- ``noisy``: N(·, 0.15) — an hour like the one the issue describes (sessions 15–20 % apart).

The rule is vectorised here over runs and looks; ``--check`` runs re-judge a subset of runs with the real
functions (``baseline.models.blocks.decide`` with ``Evidence.max_blocks``) and stop if any outcome differs.

    python benchmarks/tooling/sequential_simulation.py            # 20,000 runs per case (~1 min)
    python benchmarks/tooling/sequential_simulation.py --runs 2000 --spending pocock
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
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from pytest_tee.baseline import sequential  # noqa: E402

RESULTS = HERE / "results"
SESSIONS = HERE / "gate_evaluation" / "results" / "r20-threads1-sessions.json"
CHANGES = (0.0, 0.05, 0.10, 0.20, 0.40)
MAX_BLOCKS = 18
ALPHA = 0.01
THRESHOLD = 0.05
BLOCK_SD = 0.081
NOISY_SD = 0.15
ROUNDS = 5
SPENDINGS = {"obrien-fleming": sequential.obrien_fleming, "pocock": sequential.pocock}
_EDGE = 1e-9


def real_null_blocks() -> Any:
    """The null block differences of the 200 real sessions (two neighbouring real blocks give one per arm)."""
    import numpy as np

    sessions = json.loads(SESSIONS.read_text())["sessions"]
    blocks: dict[int, list[dict[str, Any]]] = {}
    for session in sessions:
        blocks.setdefault(session["block"], []).append(session)
    ordered = [sorted(members, key=lambda s: s["position"]) for _, members in sorted(blocks.items())]

    def level(session: dict[str, Any]) -> float:
        return math.log(statistics.median(session["decode_tps"][:ROUNDS]))

    null = []
    for first, second in zip(ordered[0::2], ordered[1::2], strict=True):
        for arm in "AB":
            s1, s2, s3, s4 = (level(s) for s in first + second if s["arm"] == arm)
            null.append((s2 + s3) / 2 - (s1 + s4) / 2)
    values = np.array(null)
    return values - values.mean()


def draw(noise: str, change: float, runs: int, blocks: int, rng: Any, pool: Any) -> Any:
    shift = math.log(1.0 - change)
    if noise == "normal":
        return rng.normal(shift, BLOCK_SD, (runs, blocks))
    if noise == "noisy":
        return rng.normal(shift, NOISY_SD, (runs, blocks))
    if noise == "t3":
        return shift + BLOCK_SD * rng.standard_t(3, (runs, blocks)) / math.sqrt(3.0)
    if noise == "real":
        return shift + pool[rng.integers(0, pool.size, (runs, blocks))]
    raise ValueError(noise)


def outcomes(estimate: Any, low: Any, high: Any, p_down: Any, p_up: Any, alpha: float) -> tuple[Any, Any, Any]:
    """``gate.classify``'s rule on log-scale arrays: (regressed, improved, unchanged)."""
    import numpy as np

    ratio = np.exp(estimate)
    beyond = np.abs(ratio - 1.0) > THRESHOLD + _EDGE
    regressed = beyond & (ratio < 1.0) & (np.exp(high) < 1.0) & (p_down <= alpha)
    improved = beyond & (ratio > 1.0) & (np.exp(low) > 1.0) & (p_up <= alpha)
    unchanged = (
        ~(regressed | improved) & (np.exp(low) >= 1 - THRESHOLD - _EDGE) & (np.exp(high) <= 1 + THRESHOLD + _EDGE)
    )
    return regressed, improved, unchanged


def sequential_rule(d: Any, max_blocks: int, spending: sequential.Spending) -> dict[str, Any]:
    """Outcome and blocks used per run, stopping at the first decided look."""
    import numpy as np
    from scipy.special import stdtr, stdtrit

    runs = d.shape[0]
    looks = sequential.looks_until(max_blocks)
    nominal = np.array(sequential.nominal_levels(looks, max_blocks, ALPHA, spending))
    ci_nominal = np.array(sequential.nominal_levels(looks, max_blocks, sequential.CI_SIDE_ALPHA, spending))
    crossed_down = np.zeros(runs, bool)
    crossed_up = np.zeros(runs, bool)
    outcome = np.full(runs, "inconclusive", dtype=object)
    stopped = np.full(runs, max_blocks)
    open_ = np.ones(runs, bool)
    for index, k in enumerate(looks):
        prefix = d[:, :k]
        mean = prefix.mean(axis=1)
        se = prefix.std(axis=1, ddof=1) / math.sqrt(k)
        t = mean / se
        crossed_down |= stdtr(k - 1, t) <= nominal[index]  # one-sided p that the head is lower
        crossed_up |= stdtr(k - 1, -t) <= nominal[index]
        half = stdtrit(k - 1, 1.0 - ci_nominal[index]) * se
        # The sequential p in the estimate's direction is ≤ α exactly when that side has crossed at level α.
        p_down = np.where(crossed_down, 0.0, 1.0)
        p_up = np.where(crossed_up, 0.0, 1.0)
        regressed, improved, unchanged = outcomes(mean, mean - half, mean + half, p_down, p_up, ALPHA)
        for name, hit in (("regressed", regressed), ("improved", improved), ("unchanged", unchanged)):
            now = open_ & hit
            outcome[now] = name
            stopped[now] = k
            open_ &= ~now
    return {"outcome": outcome, "blocks": stopped}


def fixed_rule(d: Any) -> dict[str, Any]:
    """The rule ``ab`` used before: all blocks, one t-test (95 % t-interval, one-sided p, estimate's direction)."""
    import numpy as np
    from scipy.special import stdtr, stdtrit

    k = d.shape[1]
    mean = d.mean(axis=1)
    se = d.std(axis=1, ddof=1) / math.sqrt(k)
    half = stdtrit(k - 1, 0.975) * se
    p = stdtr(k - 1, -np.abs(mean) / se)
    regressed, improved, unchanged = outcomes(mean, mean - half, mean + half, p, p, ALPHA)
    outcome = np.full(d.shape[0], "inconclusive", dtype=object)
    outcome[unchanged] = "unchanged"
    outcome[improved] = "improved"
    outcome[regressed] = "regressed"
    return {"outcome": outcome, "blocks": np.full(d.shape[0], k)}


def check(d: Any, judged: dict[str, Any], max_blocks: int, count: int) -> int:
    """Re-judge the first ``count`` runs with pytest-tee's own functions at the look where the vectorised rule
    stopped (same outcome) and the look before it (still inconclusive); returns the runs checked.
    """
    from pytest_tee.baseline.models import Evidence, Rule
    from pytest_tee.baseline.models import blocks as blocks_model

    def judge(row: int, k: int) -> str:
        blocks = [([[1.0]], [[math.exp(value)]]) for value in d[row, :k]]
        evidence = Evidence("sim", "decode_tps", blocks=blocks, max_blocks=max_blocks)
        return blocks_model.decide(evidence, Rule(THRESHOLD * 100, True, ALPHA)).outcome

    for row in range(min(count, d.shape[0])):
        outcome, k = judged["outcome"][row], int(judged["blocks"][row])
        before = judge(row, k - 1) if k > sequential.FIRST_LOOK else "inconclusive"
        if (judge(row, k), before) != (outcome, "inconclusive"):
            raise SystemExit(f"vectorised rule and decide_blocks disagree on run {row} ({outcome} after {k} blocks)")
    return min(count, d.shape[0])


def summarize(judged: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    outcome, blocks = judged["outcome"], judged["blocks"]
    decided = outcome != "inconclusive"
    return {
        **{name: float(np.mean(outcome == name)) for name in ("regressed", "improved", "unchanged", "inconclusive")},
        "median_blocks": float(np.median(blocks)),
        "mean_blocks": float(np.mean(blocks)),
        "median_blocks_when_decided": float(np.median(blocks[decided])) if decided.any() else None,
    }


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(args.seed)
    pool = real_null_blocks()
    spending = SPENDINGS[args.spending]
    rows = []
    checked = 0
    np.seterr(divide="ignore", over="ignore", invalid="ignore")  # resampled real blocks can repeat: SD 0, t ±∞
    for noise in args.noise:
        for change in CHANGES:
            d = draw(noise, change, args.runs, args.max_blocks, rng, pool)
            seq = sequential_rule(d, args.max_blocks, spending)
            if args.check:
                checked += check(d, seq, args.max_blocks, args.check)
            rows.append(
                {
                    "noise": noise,
                    "drop": change,
                    "runs": args.runs,
                    "sequential": summarize(seq),
                    "fixed": summarize(fixed_rule(d)),
                }
            )
            print(_row(rows[-1]), flush=True)
    return {
        "spending": args.spending,
        "max_blocks": args.max_blocks,
        "alpha": ALPHA,
        "threshold": THRESHOLD,
        "block_sd": BLOCK_SD,
        "noisy_sd": NOISY_SD,
        "real_null_blocks": {"count": int(pool.size), "sd": float(pool.std(ddof=1))},
        "runs_checked_against_decide_blocks": checked,
        "seed": args.seed,
        "rows": rows,
    }


def _row(row: dict[str, Any]) -> str:
    seq, fixed = row["sequential"], row["fixed"]
    return (
        f"| {row['noise']} | {row['drop']:.0%} | {seq['regressed']:.2%} | {seq['improved']:.2%} | "
        f"{seq['unchanged']:.1%} | {seq['inconclusive']:.1%} | {seq['median_blocks']:g} | {seq['mean_blocks']:.1f} | "
        f"{fixed['regressed']:.2%} | {fixed['unchanged']:.1%} |"
    )


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"## Sequential `pytest-tee ab` ({result['spending']} spending, at most {result['max_blocks']} blocks, "
        f"α = {result['alpha']:g}, threshold ±{result['threshold']:.0%}, {result['rows'][0]['runs']} runs per case)",
        "",
        "| noise | true drop | regressed | improved | unchanged | inconclusive | median blocks | mean blocks "
        "| fixed 18: regressed | fixed 18: unchanged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(row) for row in result["rows"]),
        "",
        f"Noise: `normal` N(·, {result['block_sd']}) per block (the largest block SD measured on this machine); "
        f"`real` the {result['real_null_blocks']['count']} real null blocks resampled (SD "
        f"{result['real_null_blocks']['sd']:.3f}); `t3` Student t (3 df) at SD {result['block_sd']}; `noisy` "
        f"N(·, {result['noisy_sd']}). At 0 % drop `regressed` is the false-alarm rate. The fixed rule always runs "
        f"{result['max_blocks']} blocks. {result['runs_checked_against_decide_blocks']} runs were re-judged with "
        "`baseline.models.blocks.decide` (with `Evidence.max_blocks`) at the look where they stopped and the one "
        "before, and agreed.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--max-blocks", type=int, default=MAX_BLOCKS)
    parser.add_argument("--spending", choices=sorted(SPENDINGS), default="obrien-fleming")
    parser.add_argument("--noise", nargs="+", default=["normal", "real", "t3", "noisy"])
    parser.add_argument("--check", type=int, default=5, help="runs per case re-judged with decide_blocks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write <out>.json and <out>.md")
    args = parser.parse_args(argv)
    result = simulate(args)
    text = markdown(result)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
