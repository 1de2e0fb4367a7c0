"""Session-level decisions: a session, not a round, is the unit the gate judges.

Two sessions of the same code on a shared machine differ by more than the rounds inside either of them (on a
shared 2-vCPU VM session medians varied with a log SD of ~0.09, rounds within a session ~0.07). Rounds of two
separate sessions are therefore not exchangeable, and a test on pooled rounds calls the session-to-session
difference a regression: 8–12 % false alarms per comparison where 1 % was meant (docs/baselines-and-gating.md).

Every model here works on log *session levels* — a session's level is the median of its rounds — and weighs the
difference of levels against the between-session noise, with a t distribution for the uncertainty of that noise:

- ``decide_blocks``: same-runner A/B in ABBA blocks (``pytest-tee ab``). Per block d = mean(log head levels) −
  mean(log base levels); the estimate is the mean of d, its 95 % t-interval over blocks (k − 1 df). Assumes the
  blocks are independent; drift within a block cancels.
- ``decide_history``: one head session against a stored baseline when storage holds ≥ 3 runs of the benchmark
  (same environment fingerprint and comparison key). The between-session SD is the sample SD of the stored runs'
  levels (newest ≤ 10); the estimate is head level − baseline level, SE = SD · √2, m − 1 df. Assumes the head
  session varies as the stored sessions did — unless its rounds (or the baseline's) say otherwise: the allowance
  is never below the fallback's, because a session disturbed by a neighbour is noisy in its own rounds too (on
  the shared VM every false alarm of the stored-spread rule alone came from such a session).
- ``decide_single``: the fallback with fewer than 3 stored runs. The between-session noise is not measured; it is
  assumed to be ``FALLBACK_NOISE_RATIO`` × the pooled round-to-round SD of the two sessions (plus the noise of each
  session's median), with n_base + n_head − 2 df. The verdict's note says so.
- ``decide_stored``: ``decide_history`` when the history suffices, else ``decide_single``.

The outcome rule is ``gate.classify``, shared with the round-level model: ``regressed`` when the CI excludes "no
change" on the bad side, the estimate is beyond the threshold and the one-sided t p-value (in the direction of the
estimate) is ≤ α (Holm across a comparison's verdicts); ``improved`` symmetrically; ``unchanged`` when the whole CI
lies within ±threshold; else ``inconclusive`` with ``session_hint``'s count of more blocks, stored runs, or the
blocks of a ``pytest-tee ab`` run that would likely decide it.

numpy and scipy are imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pytest_tee.baseline.gate import DEFAULT_ALPHA, HINT_POWER, Verdict, classify

# Sessions on the shared 2-vCPU VM varied 1.2 × as much as their rounds (session log SD 0.089 against a median
# per-session round SD of 0.074). Assuming exactly that would put the false-alarm rate at α on such a runner and
# above it on a worse one; 1.5 × kept it at 0.2–0.3 % in simulation with sessions 1.2 × as noisy as rounds.
FALLBACK_NOISE_RATIO = 1.5
MIN_BLOCKS = 3
MIN_STORED_RUNS = 3
HISTORY_LIMIT = 10  # stored runs used for the between-session SD: recent enough to describe today's machine
MIN_ROUNDS = 3  # per session, for the single-session models (the fallback needs a round-to-round SD)
MAX_BLOCKS_HINT = 400
# The median of n rounds varies with variance ≈ (π/2) σ² / n (its asymptotic efficiency against the mean).
MEDIAN_VARIANCE_FACTOR = math.pi / 2

Block = tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]  # (base sessions' rounds, head sessions' rounds)


def log_level(samples: Sequence[float]) -> float:
    """A session's level on the log scale: the log of the median of its rounds."""
    return math.log(statistics.median(float(value) for value in samples))


# ---------------------------------------------------------------------------------------------------- blocks


def decide_blocks(
    benchmark: str,
    metric: str,
    blocks: Sequence[Block],
    threshold_pct: float,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
    max_blocks: int | None = None,
) -> Verdict:
    """The verdict from ABBA blocks: each block's base and head sessions (each session a list of round values).

    Per block d = mean(log head levels) − mean(log base levels); ratio = exp(mean d) with a 95 % t-interval over
    blocks and a one-sided t-test. Sessions without rounds are left out; a block without a session on both sides
    is not counted. Fewer than 3 counted blocks: inconclusive with a note.

    ``max_blocks``: the blocks are a look of a sequential run of at most that many blocks (``pytest-tee ab``
    looks after every block): p-value and CI are then the group-sequential ones of ``sequential.look``, valid
    however often the run looked.
    """
    import numpy as np

    kept: list[tuple[list[float], list[float]]] = []
    rounds = {"base": 0, "head": 0}
    for base_sessions, head_sessions in blocks:
        sides: dict[str, list[float]] = {"base": [], "head": []}
        for side, sessions in (("base", base_sessions), ("head", head_sessions)):
            for samples in sessions:
                values = [float(value) for value in samples]  # plain floats: far quicker than numpy for a few rounds
                if not values:
                    continue
                if not all(math.isfinite(value) and value > 0 for value in values):
                    problem = _unusable(side, np.asarray(values))
                    return _untested(benchmark, metric, threshold_pct, higher_is_better, problem, model="blocks")
                sides[side].append(log_level(values))
                rounds[side] += len(values)
        if sides["base"] and sides["head"]:
            kept.append((sides["base"], sides["head"]))
    base_levels = [level for base, _ in kept for level in base]
    head_levels = [level for _, head in kept for level in head]
    k = len(kept)
    common: dict[str, Any] = {
        "threshold_pct": threshold_pct,
        "n_base": rounds["base"],
        "n_head": rounds["head"],
        "higher_is_better": higher_is_better,
        "model": "blocks",
        "hint_unit": "blocks",
        "sessions_base": len(base_levels),
        "sessions_head": len(head_levels),
    }
    base_value = math.exp(statistics.fmean(base_levels)) if base_levels else math.nan
    head_value = math.exp(statistics.fmean(head_levels)) if head_levels else math.nan
    if k < MIN_BLOCKS:
        return Verdict(
            benchmark,
            metric,
            base_value,
            head_value,
            head_value / base_value if base_levels and head_levels else math.nan,
            (math.nan, math.nan),
            "inconclusive",
            rounds_hint=MIN_BLOCKS - k,
            note=f"{k} block(s) with both sides measured; the block model needs at least {MIN_BLOCKS}",
            method=f"blocks: {k} block(s), too few for a t-interval",
            **common,
        )
    differences = [statistics.fmean(head) - statistics.fmean(base) for base, head in kept]
    sd = statistics.stdev(differences)
    sessions_per_block = (len(base_levels) + len(head_levels)) / k
    if max_blocks is not None:
        return _sequential_verdict(
            benchmark, metric, base_value, head_value, differences, max_blocks, alpha, sessions_per_block, common
        )
    method = (
        f"blocks: {k} blocks of {sessions_per_block:g} sessions, head − base of the mean log session medians per "
        f"block, t over blocks ({k - 1} df; block SD {sd:.1%})"
    )
    return _t_verdict(
        benchmark,
        metric,
        base_value,
        head_value,
        estimate=statistics.fmean(differences),
        se=sd / math.sqrt(k),
        df=k - 1,
        alpha=alpha,
        method=method,
        **common,
    )


def _sequential_verdict(
    benchmark: str,
    metric: str,
    base_value: float,
    head_value: float,
    differences: Sequence[float],
    max_blocks: int,
    alpha: float,
    sessions_per_block: float,
    common: dict[str, Any],
) -> Verdict:
    from pytest_tee.baseline.sequential import look

    seen = look(differences, max_blocks, alpha)
    method = (
        f"blocks, sequential: look after block {seen.blocks} of at most {seen.max_blocks} ({sessions_per_block:g} "
        f"sessions a block), head − base of the mean log session medians per block, t over blocks ({seen.df} df; "
        f"block SD {seen.se * math.sqrt(seen.blocks):.1%}); O'Brien–Fleming α spending, |t| ≥ "
        f"{seen.t_boundary:.3g} needed here, repeated 95 % CI"
    )
    verdict = Verdict(
        benchmark,
        metric,
        base_value,
        head_value,
        math.exp(seen.estimate),
        (math.exp(seen.ci95[0]), math.exp(seen.ci95[1])),
        "inconclusive",
        p_value=seen.p_value,
        method=method,
        se_log=seen.se,
        df=float(seen.df),
        **common,
    )
    return classify(verdict, alpha=alpha)


# ---------------------------------------------------------------------------------------- one head session


def decide_stored(
    benchmark: str,
    metric: str,
    base_samples: Sequence[float],
    head_samples: Sequence[float],
    threshold_pct: float,
    *,
    higher_is_better: bool,
    history: Sequence[Sequence[float]] = (),
    alpha: float = DEFAULT_ALPHA,
) -> Verdict:
    """One head session against a stored baseline: ``decide_history`` when ``history`` (the rounds of stored runs
    with this fingerprint and comparison key, newest first, the baseline's own included) holds at least 3 runs,
    else ``decide_single``.
    """
    usable = [samples for samples in history if len(samples)][:HISTORY_LIMIT]
    if len(usable) >= MIN_STORED_RUNS:
        return decide_history(
            benchmark,
            metric,
            base_samples,
            head_samples,
            usable,
            threshold_pct,
            higher_is_better=higher_is_better,
            alpha=alpha,
        )
    return decide_single(
        benchmark,
        metric,
        base_samples,
        head_samples,
        threshold_pct,
        higher_is_better=higher_is_better,
        alpha=alpha,
        stored_runs=max(1, len(usable)),
    )


def decide_history(
    benchmark: str,
    metric: str,
    base_samples: Sequence[float],
    head_samples: Sequence[float],
    history: Sequence[Sequence[float]],
    threshold_pct: float,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
) -> Verdict:
    """Head session against the stored baseline, with the between-session SD measured by the stored runs.

    ``history``: the rounds of the newest stored runs (at least 3; the first ``HISTORY_LIMIT`` are used), the
    baseline's own included. SD = sample SD of their log levels; estimate = log level(head) − log level(base);
    SE = SD · √2; t with (runs − 1) df — or, when larger, the fallback's SE from the two sessions' rounds, with its
    df (``decide_single``). Raises ValueError with fewer than 3 runs (``decide_stored`` falls back).
    """
    import numpy as np

    runs = [np.asarray(samples, dtype=float) for samples in history if len(samples)][:HISTORY_LIMIT]
    if len(runs) < MIN_STORED_RUNS:
        raise ValueError(f"decide_history needs at least {MIN_STORED_RUNS} stored runs, got {len(runs)}")
    base = np.asarray(base_samples, dtype=float)
    head = np.asarray(head_samples, dtype=float)
    problem = _single_problem(base, head) or next(
        (found for values in runs if (found := _unusable("stored-run", values))), ""
    )
    if problem:
        return _untested(
            benchmark, metric, threshold_pct, higher_is_better, problem, model="history", base=base, head=head
        )
    m = len(runs)
    sd = float(np.std([log_level(values) for values in runs], ddof=1))
    se, df = sd * math.sqrt(2.0), float(m - 1)
    pooled, pooled_df = _pooled_round_sd(base, head)
    method = (
        f"history: one head session against the stored baseline; between-session SD {sd:.1%} from {m} stored runs "
        f"with this fingerprint ({m - 1} df)"
    )
    if pooled * _single_se_factor(base.size, head.size) > se:
        # A session disturbed by a neighbour shows it in its own rounds: a quiet history does not vouch for it.
        se, df = pooled * _single_se_factor(base.size, head.size), float(pooled_df)
        method += (
            f", but the rounds of these two sessions imply more ({FALLBACK_NOISE_RATIO:g} × their round SD "
            f"{pooled:.1%}, {pooled_df} df), which is used"
        )
    return _t_verdict(
        benchmark,
        metric,
        float(np.median(base)),
        float(np.median(head)),
        estimate=log_level(head) - log_level(base),
        se=se,
        df=df,
        alpha=alpha,
        method=method,
        threshold_pct=threshold_pct,
        n_base=int(base.size),
        n_head=int(head.size),
        higher_is_better=higher_is_better,
        model="history",
        hint_unit="ab blocks",
        sessions_base=m,
        sessions_head=1,
    )


def _pooled_round_sd(base: Any, head: Any) -> tuple[float, int]:
    """The pooled round-to-round SD of two sessions on the log scale, and its degrees of freedom."""
    import numpy as np

    nb, nh = int(base.size), int(head.size)
    df = nb + nh - 2
    pooled = math.sqrt(((nb - 1) * np.var(np.log(base), ddof=1) + (nh - 1) * np.var(np.log(head), ddof=1)) / df)
    return pooled, df


def decide_single(
    benchmark: str,
    metric: str,
    base_samples: Sequence[float],
    head_samples: Sequence[float],
    threshold_pct: float,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
    stored_runs: int = 1,
) -> Verdict:
    """One session a side with the between-session noise not measured (fewer than 3 stored runs).

    The level of a session is assumed to vary by ``FALLBACK_NOISE_RATIO`` × the pooled round-to-round log SD s of
    the two sessions, on top of the noise of its median: SE = s · √(2 · ratio² + (π/2)(1/n_base + 1/n_head)), t with
    n_base + n_head − 2 df. ``stored_runs`` (runs with this fingerprint, the baseline included) goes into the note.
    """
    import numpy as np

    base = np.asarray(base_samples, dtype=float)
    head = np.asarray(head_samples, dtype=float)
    problem = _single_problem(base, head)
    if problem:
        return _untested(
            benchmark,
            metric,
            threshold_pct,
            higher_is_better,
            problem,
            model="single",
            base=base,
            head=head,
            stored_runs=stored_runs,
        )
    nb, nh = int(base.size), int(head.size)
    pooled, df = _pooled_round_sd(base, head)
    se = pooled * _single_se_factor(nb, nh)
    method = (
        f"single: one session a side; between-session noise assumed {FALLBACK_NOISE_RATIO:g} × the round-to-round "
        f"SD ({pooled:.1%}), {df} df"
    )
    return _t_verdict(
        benchmark,
        metric,
        float(np.median(base)),
        float(np.median(head)),
        estimate=log_level(head) - log_level(base),
        se=se,
        df=df,
        alpha=alpha,
        method=method,
        threshold_pct=threshold_pct,
        n_base=nb,
        n_head=nh,
        higher_is_better=higher_is_better,
        model="single",
        hint_unit="ab blocks",
        sessions_base=stored_runs,
        sessions_head=1,
    )


def _single_se_factor(n_base: float, n_head: float) -> float:
    """SE of the difference of two session levels per unit of round-to-round SD, under the fallback's assumption."""
    return math.sqrt(2.0 * FALLBACK_NOISE_RATIO**2 + MEDIAN_VARIANCE_FACTOR * (1.0 / n_base + 1.0 / n_head))


def unmeasured_noise_note(stored_runs: int) -> str:
    # No "; " inside: renderers split notes there and print this caveat once for all benchmarks.
    return (
        f"between-session noise not measured ({stored_runs} stored run(s) with this fingerprint, "
        f"{MIN_STORED_RUNS} needed), so it is assumed to be {FALLBACK_NOISE_RATIO:g} × the round-to-round noise"
    )


# -------------------------------------------------------------------------------------------- shared parts


def _t_verdict(
    benchmark: str,
    metric: str,
    base_value: float,
    head_value: float,
    *,
    estimate: float,
    se: float,
    df: float,
    alpha: float,
    method: str,
    **fields: Any,
) -> Verdict:
    """Ratio, 95 % t-interval and one-sided p (in the direction of the estimate) of a log-scale estimate."""
    from scipy.special import stdtr, stdtrit  # the t distribution's ufuncs: far quicker than scipy.stats.t

    if se > 0:
        half = float(stdtrit(df, 0.975)) * se
        ci95 = (math.exp(estimate - half), math.exp(estimate + half))
        p_value = float(stdtr(df, -abs(estimate) / se))
    else:  # no spread at all (identical sessions): the estimate is what it is
        ci95 = (math.exp(estimate), math.exp(estimate))
        p_value = 0.0 if estimate != 0 else 1.0
    verdict = Verdict(
        benchmark,
        metric,
        base_value,
        head_value,
        math.exp(estimate),
        ci95,
        "inconclusive",
        p_value=p_value,
        method=method,
        se_log=se,
        df=float(df),
        **fields,
    )
    return classify(verdict, alpha=alpha)


def _unusable(side: str, values: Any) -> str:
    import numpy as np

    if not np.all(np.isfinite(values)):
        return f"{side} samples include non-finite values; nothing can be decided"
    if np.any(values <= 0):
        return f"{side} samples include values ≤ 0; a ratio needs positive values"
    return ""


def _single_problem(base: Any, head: Any) -> str:
    for side, values in (("base", base), ("head", head)):
        if values.size and (problem := _unusable(side, values)):
            return problem
    if min(base.size, head.size) < MIN_ROUNDS:
        return (
            f"too few samples (base {base.size}, head {head.size}); the gate needs at least {MIN_ROUNDS} rounds per "
            "session"
        )
    return ""


def _untested(
    benchmark: str,
    metric: str,
    threshold_pct: float,
    higher_is_better: bool,
    note: str,
    *,
    model: str,
    base: Any = None,
    head: Any = None,
    stored_runs: int | None = None,
) -> Verdict:
    import numpy as np

    nb = int(base.size) if base is not None else None
    nh = int(head.size) if head is not None else None
    base_value = float(np.median(base)) if nb else math.nan
    head_value = float(np.median(head)) if nh else math.nan
    ratio = head_value / base_value if nb and nh and base_value > 0 else math.nan
    short = nb is not None and nh is not None and min(nb, nh) < MIN_ROUNDS and "too few" in note
    return Verdict(
        benchmark,
        metric,
        base_value,
        head_value,
        ratio,
        (math.nan, math.nan),
        "inconclusive",
        threshold_pct=threshold_pct,
        n_base=nb,
        n_head=nh,
        higher_is_better=higher_is_better,
        rounds_hint=MIN_ROUNDS - min(nb or 0, nh or 0) if short else None,
        note=note,
        model=model,
        method=f"{model}: not tested",
        sessions_base=stored_runs,
    )


# ------------------------------------------------------------------------------------------------- hints


def _decides(
    estimate: float, se: Any, df: Any, *, beyond: bool, rooms: tuple[float, float], alpha: float, power: bool = True
) -> Any:
    """Whether a verdict with standard errors ``se`` and ``df`` would be decided at the current estimate — with
    ``power``, likely decided (80 % power if the current estimate were the true change). Elementwise over numpy
    arrays of candidates.
    """
    import numpy as np
    from scipy.special import ndtri, stdtrit

    margin = float(ndtri(HINT_POWER)) if power else 0.0
    if beyond:  # the CI must clear "no change" and the test must reach alpha
        needed = np.maximum(stdtrit(df, 0.975), stdtrit(df, 1.0 - alpha)) + margin
        return abs(estimate) >= needed * se
    needed = stdtrit(df, 0.975) + margin  # the whole CI must fit inside ±threshold
    return needed * se <= min(rooms)


def session_hint(verdict: Verdict, *, beyond: bool, alpha: float) -> tuple[int | None, str, str]:
    """(count, unit, note) for an inconclusive session-level verdict: about how many more blocks, more stored runs,
    or the blocks of a ``pytest-tee ab`` run would decide it — with ~80 % probability if the current estimate were
    the true change. The estimate is itself uncertain, so this is a guide, not a promise.

    ``alpha`` is the α the p-value must reach (the family's α over the number of comparisons, Holm's first step).
    """
    import numpy as np

    se, df = verdict.se_log or 0.0, verdict.df or 0.0
    limit = (verdict.threshold_pct or 0.0) / 100.0
    estimate = math.log(verdict.ratio)
    rooms = (estimate - math.log(1.0 - limit), math.log(1.0 + limit) - estimate) if limit < 1 else (0.0, 0.0)
    if beyond:
        reason = f"a {abs(verdict.change_pct):.1f} % change beyond ±{verdict.threshold_pct:g} % that is not yet certain"
    else:
        reason = f"the CI reaches beyond ±{verdict.threshold_pct:g} %"
        if min(rooms) <= 0:
            return (
                None,
                "blocks",
                f"{reason}; the estimate sits at the threshold, so more data are unlikely to decide it",
            )

    def first(se_of: Any, df_of: Any, candidates: Any) -> int | None:
        ok = _decides(estimate, se_of(candidates), df_of(candidates), beyond=beyond, rooms=rooms, alpha=alpha)
        return int(candidates[np.argmax(ok)]) if np.any(ok) else None

    def ab_blocks(block_sd: float, why: str) -> tuple[int | None, str, str]:
        ks = np.arange(MIN_BLOCKS, MAX_BLOCKS_HINT + 1)
        k = first(lambda c: block_sd / np.sqrt(c), lambda c: c - 1, ks)
        if k is None:
            return (
                None,
                "ab blocks",
                f"{reason}; {why}, and even {MAX_BLOCKS_HINT} ABBA blocks would likely not" + _QUIET,
            )
        return k, "ab blocks", f"{reason}; {why}: `pytest-tee ab --blocks {k}` would likely decide it"

    if verdict.model == "blocks":
        k = round(df) + 1
        block_sd = se * math.sqrt(k)
        total = first(lambda c: block_sd / np.sqrt(c), lambda c: c - 1, np.arange(k + 1, MAX_BLOCKS_HINT + 1))
        if total is None:
            return None, "blocks", f"{reason}; deciding it would take more than {MAX_BLOCKS_HINT} blocks" + _QUIET
        more = total - k
        per_block = ((verdict.sessions_base or 0) + (verdict.sessions_head or 0)) / k
        sessions = f" ({round(more * per_block)} sessions)" if per_block else ""
        return more, "blocks", f"{reason}; about {more} more blocks{sessions} would likely decide it"
    if verdict.model == "history":
        m = verdict.sessions_base or 0
        measured = round(df) == m - 1  # the stored runs' spread set the allowance (not the rounds')
        total = (
            first(lambda c: se + 0.0 * c, lambda c: c - 1, np.arange(m + 1, HISTORY_LIMIT + 1)) if measured else None
        )
        if total is not None:
            more = total - m
            return more, "stored runs", f"{reason}; about {more} more stored runs would likely decide it"
        return ab_blocks(se / math.sqrt(2.0), "one session cannot decide it at this between-session noise")
    # single: the assumed level SD of one session is se / √2
    return ab_blocks(se / math.sqrt(2.0), "one session a side cannot decide it at this noise")


_QUIET = " (reduce the noise: pin threads, quiet the runner)"


def rounds_could_decide(verdict: Verdict, *, alpha: float) -> bool:
    """Whether more head rounds in this session could still decide an inconclusive verdict (adaptive rounds).

    Against stored runs the allowance is the between-session noise, which rounds within the head session do not
    shrink: with history never; in the fallback only the head median's own share, so only when the verdict would
    be decided at the current estimate with that share gone (rarely: sampling on would mostly waste time).
    """
    if verdict.outcome != "inconclusive":
        return False
    if verdict.model == "rounds":
        return True
    if verdict.model != "single" or verdict.se_log is None or verdict.n_base is None or verdict.n_head is None:
        return False
    if not (math.isfinite(verdict.ratio) and verdict.ratio > 0) or verdict.threshold_pct is None:
        return False
    limit = verdict.threshold_pct / 100.0
    estimate = math.log(verdict.ratio)
    beyond = abs(verdict.ratio - 1.0) > limit
    rooms = (estimate - math.log(1.0 - limit), math.log(1.0 + limit) - estimate)
    if not beyond and min(rooms) <= 0:
        return False
    pooled = verdict.se_log / _single_se_factor(verdict.n_base, verdict.n_head)
    best_se = pooled * math.sqrt(2.0 * FALLBACK_NOISE_RATIO**2 + MEDIAN_VARIANCE_FACTOR / verdict.n_base)
    return bool(_decides(estimate, best_se, 10_000.0, beyond=beyond, rooms=rooms, alpha=alpha, power=False))
