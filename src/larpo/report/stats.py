"""The statistics of a report, without scipy: Student t quantiles and p-values, mean ± CI over
seeds, paired differences by seed, Holm's correction, and the verdict rule of claims."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

ALPHA = 0.05  # two-sided level of every interval and test
MARGIN = 0.01  # |difference| below this is "no difference" for the verdicts (one point of win rate)
MOVED = 0.03  # both settings of an equivalence verdict moved this far from the SFT policy


# --- Student t, without scipy -------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float, dof: int) -> float:
    """Two-sided p-value of Student's t with `dof` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_quantile(dof: int, level: float = 1 - ALPHA) -> float:
    """The two-sided `level` quantile of Student's t (bisection on the p-value)."""
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, dof) > 1 - level else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% confidence interval (None for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, None
    return m, t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


@dataclass
class Paired:
    """Per-seed differences of a setting to the baseline on one metric."""

    mean: float
    half: float | None  # 95% CI half-width (None: one seed)
    n: int
    p: float | None  # two-sided paired t p-value (None: one seed)
    half90: float | None = None  # 90% CI half-width: the interval of the equivalence test (TOST)
    sd: float | None = None  # standard deviation of the per-seed differences (None: one seed)


def seeds_for(sd: float, half_width: float, most: int = 100_000) -> int:
    """The fewest seeds whose paired 95% CI half-width, t(n-1) sd / sqrt(n), is at most
    `half_width`, at the observed standard deviation `sd` of the per-seed differences."""
    n = 2
    while n < most and t_quantile(n - 1) * sd / math.sqrt(n) > half_width:
        n = n + 1 if n < 64 else int(n * 1.05) + 1  # past 64 seeds t is near 1.96: coarse steps
    return n


def paired(a: dict[int, float], b: dict[int, float]) -> Paired | None:
    """The paired comparison of a to b over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = [a[s] - b[s] for s in seeds]
    m, h = mean_ci(d)
    if len(d) < 2:
        return Paired(m, None, len(d), None)
    sd = statistics.stdev(d)
    p = t_pvalue(m / (sd / math.sqrt(len(d))), len(d) - 1) if sd > 0 else (0.0 if m else 1.0)
    h90 = t_quantile(len(d) - 1, level=1 - 2 * ALPHA) * sd / math.sqrt(len(d))
    return Paired(m, h, len(d), p, h90, sd)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over one experiment's claims)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def verdict(diff: Paired | None, p_adjusted: float | None, moved: bool = True) -> str:
    """The README's rule for a claim "A > B" on the paired differences A - B. `moved`: both A and
    B moved from the SFT policy by at least MOVED in the claim's metric; only then can a small
    difference say that the two are the same (two policies that did not move trivially are)."""
    if diff is None or diff.p is None:
        return "inconclusive"
    if p_adjusted < ALPHA:
        return "reproduced" if diff.mean > 0 else "not reproduced"
    half = diff.half90 if diff.half90 is not None else diff.half
    if moved and diff.mean + half < MARGIN and diff.mean - half > -MARGIN:
        return "not reproduced"  # equivalent (TOST at 5%): the 90% interval rules out a gain of MARGIN
    return "inconclusive"
