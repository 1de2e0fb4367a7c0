"""Sequential judgement of ABBA blocks: look after every block, stop once decided, false alarms still ≤ α.

``pytest-tee ab`` looks at the evidence after every block from the third and stops as soon as every verdict is
decided. Looking repeatedly at a fixed-sample test would give noise a chance at every look (with 16 looks at
α = 1 % the false-alarm rate of a plain t-test grows several-fold), so each look is judged by a
**group-sequential design with α spending** (Lan & DeMets 1983): the design may spend α(t) of its α by the
fraction t = blocks / maximum blocks of its information, whatever the looks are, and each look's boundary is set so
that the probability under "no change" of first crossing there is exactly the α spent since the last look.

The spending function is the **O'Brien–Fleming type**, α(t) = 2 − 2 Φ(z_{1−α/2} / √t). Why this and not an
always-valid confidence sequence:

- The maximum is known (``--blocks``), so a design that spends all of α by then loses almost nothing against the
  fixed-sample test at the maximum — detection within the default maximum stays where it was — while an
  always-valid confidence sequence pays for an unbounded horizon with wider intervals at every look.
- O'Brien–Fleming spends almost nothing at the first looks, where the block SD is estimated from 2–4 degrees of
  freedom and the t approximation below is weakest; a Pocock-type design spends evenly and its early boundaries
  are where heavy-tailed block differences would cause false alarms. Large changes still stop early because
  their t statistics grow with √k well past the early boundaries
  (``benchmarks/tooling/sequential_simulation.py`` measures both).

The boundaries assume a known block SD (z). The SD is estimated, so each z boundary is turned into its nominal
one-sided level and compared with the t-test's p-value at that look with k − 1 df ("significance-level approach",
Jennison & Turnbull 2000, §3.8); the simulation checks that the false alarms stay ≤ α with estimated SDs.

What a look reports, for the shared outcome rule ``gate.classify``:

- ``p_value``: the sequential one-sided p in the direction of the current estimate, the smallest α' at which the
  design run at level α' would have crossed at this look or an earlier one. It never rises as blocks are added,
  and P(p ≤ u) ≤ u under "no change" at whatever look the run stops, so Holm's correction over many benchmarks
  (``gate.apply_family_correction``) keeps the family-wise rate at α.
- ``ci95``: the repeated 95 % confidence interval (Jennison & Turnbull §9.1) — intervals with boundaries from the
  same spending function at 2.5 % a side, which cover the true change at every look at once with ≥ 95 %. So
  ``unchanged`` (the whole interval within ±threshold) can also be decided early without missing a real change
  more than 2.5 % of the time.

Pure functions over the per-block differences (log head − log base of each block, in block order). numpy and scipy
are imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FIRST_LOOK = 3  # blocks before the first look: the t-test needs an SD with at least 2 degrees of freedom
CI_SIDE_ALPHA = 0.025  # the repeated 95 % interval: 2.5 % a side
_GRID_STEP = 0.06  # standard deviations between the points of the numerical integration
_GRID_FLOOR = -7.0  # z below which paths cannot come back to a boundary (Φ(−7) ≈ 1e-12)
_GRID_CEILING = 12.0  # boundaries above this (tiny α' at early looks) are integrated up to it
_LOWEST_P = 1e-12  # sequential p-values are not resolved below this
_BISECTIONS = 24  # log-scale resolution ≈ 2e-6 of the range 1e-12..0.5: far finer than any decision needs

Spending = Callable[[float, float], float]  # (information fraction t in (0, 1], one-sided α) -> α spent by t


def obrien_fleming(fraction: float, alpha: float) -> float:
    """Lan–DeMets O'Brien–Fleming-type spending: 2 − 2 Φ(z_{1−α/2} / √t); all of α at t = 1, almost none early."""
    from scipy.special import ndtr, ndtri

    if fraction >= 1.0:
        return alpha
    return float(2.0 * ndtr(ndtri(alpha / 2.0) / math.sqrt(fraction)))


def pocock(fraction: float, alpha: float) -> float:
    """Lan–DeMets Pocock-type spending: α ln(1 + (e − 1) t); spends early (compared in the simulation)."""
    return alpha * math.log(1.0 + (math.e - 1.0) * min(1.0, fraction))


@dataclass(frozen=True)
class Look:
    """The evidence after ``blocks`` blocks, judged by the sequential design (all on the log scale)."""

    blocks: int  # blocks counted (both sides measured)
    max_blocks: int
    estimate: float  # mean of the block differences
    se: float  # their SD / √blocks
    df: int  # blocks − 1
    p_value: float  # sequential one-sided p in the direction of the estimate
    ci95: tuple[float, float]  # repeated 95 % confidence interval of the estimate
    t_boundary: float  # |t| the estimate had to reach at this look to be significant at ``alpha``
    alpha: float

    @property
    def final(self) -> bool:
        return self.blocks >= self.max_blocks


def looks_until(blocks: int, first: int = FIRST_LOOK) -> tuple[int, ...]:
    """The looks (blocks counted at each) up to ``blocks``: one after every block from ``first``."""
    return tuple(range(first, blocks + 1))


@functools.lru_cache(maxsize=1024)
def z_boundaries(
    looks: tuple[int, ...], max_blocks: int, alpha: float, spending: Spending = obrien_fleming
) -> tuple[float, ...]:
    """One-sided z boundaries of the design at each look (blocks counted), for a known block SD.

    Under "no change" the standardized sum after n blocks is Z_n = S_n / √n with S_n a sum of n independent
    N(0, 1); look j's boundary c_j solves P(Z_1 < c_1, …, Z_{j−1} < c_{j−1}, Z_j ≥ c_j) = α(t_j) − α(t_{j−1}),
    by numerical integration of S's density over the region where the design goes on (Armitage, McPherson &
    Rowe 1969). A look without new α (t capped at 1) gets an infinite boundary.
    """
    from scipy.special import ndtri

    if not looks or looks[0] < 1 or any(later <= earlier for earlier, later in itertools.pairwise(looks)):
        raise ValueError(f"looks must be increasing positive block counts, got {looks}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    bounds: list[float] = []
    spent_before = 0.0
    grid: Any = None  # values of S on the continuation region of the previous look (numpy array)
    density: Any = None  # sub-density of S there, times the integration weights
    previous = 0
    for n in looks:
        spent = spending(min(1.0, n / max_blocks), alpha)
        increment = spent - spent_before
        if increment <= 0.0:
            bound = math.inf
        else:
            first = grid is None
            step = math.sqrt(n - previous)
            bound = float(-ndtri(increment)) if first else _crossing_bound(grid, density, step, math.sqrt(n), increment)
            spent_before = spent
        bounds.append(bound)
        grid, density, previous = _propagate(grid, density, previous, n, bound)
    return tuple(bounds)


def _crossing_bound(grid: Any, density: Any, step: float, root_n: float, increment: float) -> float:
    """The z boundary c at which the paths still going on first cross with probability ``increment``."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.special import ndtr

    def log_excess(c: float) -> float:
        crossing = float(np.dot(density, ndtr((grid - c * root_n) / step)))
        return math.log(max(crossing, 1e-300)) - math.log(increment)

    low, high = -10.0, 40.0
    if not log_excess(low) > 0 > log_excess(high):
        return low  # (cannot happen with increments below the mass still going on)
    return float(brentq(log_excess, low, high, xtol=1e-7))


def _propagate(grid: Any, density: Any, previous: int, n: int, bound: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The sub-density (times trapezoid weights) of S_n on the region below the look's boundary."""
    import numpy as np

    upper = min(bound, _GRID_CEILING)
    z = np.append(np.arange(_GRID_FLOOR, upper, _GRID_STEP), upper)
    root_n = math.sqrt(n)
    points = z * root_n
    widths = np.diff(points)
    weights = np.zeros(points.size)  # the trapezoid rule
    weights[:-1] += widths / 2.0
    weights[1:] += widths / 2.0
    if grid is None:
        values = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi) / root_n
    else:
        step = math.sqrt(n - previous)
        kernel = np.exp(-0.5 * ((points[:, None] - grid[None, :]) / step) ** 2) / (math.sqrt(2.0 * math.pi) * step)
        values = kernel @ density
    return points, values * weights, n


def nominal_levels(
    looks: tuple[int, ...], max_blocks: int, alpha: float, spending: Spending = obrien_fleming
) -> tuple[float, ...]:
    """Each look's nominal one-sided level 1 − Φ(c_j): a t-test p-value at or below it crosses the boundary."""
    from scipy.special import ndtr

    return tuple(float(ndtr(-bound)) for bound in z_boundaries(looks, max_blocks, alpha, spending))


def t_boundary(blocks: int, max_blocks: int, alpha: float, first: int = FIRST_LOOK) -> float:
    """The |t| that the look after ``blocks`` blocks must reach to cross the level-``alpha`` boundary."""
    from scipy.special import stdtrit

    level = nominal_levels(looks_until(blocks, first), max_blocks, alpha)[-1]
    return float(stdtrit(blocks - 1, 1.0 - level)) if level > 0 else math.inf


def one_sided_p_values(differences: Sequence[float], first: int = FIRST_LOOK, *, lower: bool) -> list[float]:
    """The plain t-test's one-sided p at each look (that the mean difference is below 0 with ``lower``)."""
    from scipy.special import stdtr

    values: list[float] = []
    for n in looks_until(len(differences), first):
        prefix = [float(value) for value in differences[:n]]
        mean = math.fsum(prefix) / n
        sd = math.sqrt(math.fsum((value - mean) ** 2 for value in prefix) / (n - 1))
        if sd == 0.0:  # identical blocks: the estimate is what it is
            values.append(0.0 if (mean < 0 if lower else mean > 0) else 1.0)
            continue
        t = mean / (sd / math.sqrt(n))
        values.append(float(stdtr(n - 1, t if lower else -t)))
    return values


def sequential_p(p_values: Sequence[float], max_blocks: int, first: int = FIRST_LOOK) -> float:
    """The smallest level at which the design crosses at some look, given the plain p-value at each look.

    Found by bisection on log α': the design at a larger α' has boundaries no stricter at any look.
    """
    if not p_values:
        return 1.0
    looks = looks_until(first + len(p_values) - 1, first)

    def crosses(level: float) -> bool:
        nominal = nominal_levels(looks, max_blocks, level)
        return any(p <= bound for p, bound in zip(p_values, nominal, strict=True))

    high = 0.5
    if not crosses(high):
        return 1.0
    low = _LOWEST_P
    if crosses(low):
        return low
    log_low, log_high = math.log(low), math.log(high)
    for _ in range(_BISECTIONS):
        middle = (log_low + log_high) / 2.0
        if crosses(math.exp(middle)):
            log_high = middle
        else:
            log_low = middle
    return math.exp(log_high)


def look(differences: Sequence[float], max_blocks: int, alpha: float, first: int = FIRST_LOOK) -> Look:
    """The design's judgement after ``len(differences)`` blocks (at least ``first``) of at most ``max_blocks``.

    Sequential p (in the direction of the estimate), repeated 95 % CI, and the |t| needed for significance at
    ``alpha`` at this look.
    """
    from scipy.special import stdtrit

    k = len(differences)
    if k < first:
        raise ValueError(f"the first look is after {first} blocks, got {k}")
    max_blocks = max(max_blocks, k)  # more blocks than the maximum (a rerun, say): this look spends the rest
    values = [float(value) for value in differences]
    mean = math.fsum(values) / k
    sd = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (k - 1))
    se = sd / math.sqrt(k)
    lower = mean < 0
    p_value = sequential_p(one_sided_p_values(values, first, lower=lower), max_blocks, first)
    ci_level = nominal_levels(looks_until(k, first), max_blocks, CI_SIDE_ALPHA)[-1]
    half = float(stdtrit(k - 1, 1.0 - ci_level)) * se if ci_level > 0 else math.inf
    return Look(
        blocks=k,
        max_blocks=max_blocks,
        estimate=mean,
        se=se,
        df=k - 1,
        p_value=p_value,
        ci95=(mean - half, mean + half),
        t_boundary=t_boundary(k, max_blocks, alpha, first),
        alpha=alpha,
    )
