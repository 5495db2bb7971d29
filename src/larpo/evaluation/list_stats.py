"""List statistics: how much information an iteration's ranked lists carry below their top.

A ranking objective can only learn from the order of a list if the list has one: a list whose
candidates are all tied, or that holds a single pair, gives pairwise, contrastive, ListMLE and
LambdaRank the same (or no) signal. Per iteration, over every prompt's ranked list:
- `levels`: share of lists with 1, 2, 3, ... distinct reward levels ("3+" sums the rest);
- `two_levels`: share with two or more levels (with a right/wrong verifier: a right and a wrong
  answer); `three_levels`: share with three or more levels;
- `dropped`: share dropped (all tied, fewer than 2 candidates); `single_pair`: share holding
  exactly two candidates;
- `top_correct`: share whose top candidate the gold judge scores 1 (where there is a judge);
  `top_not_best`: share whose top (by the reward model) is not a best candidate by the gold judge;
- `mean_size`: candidates per list after cleaning and de-duplication; `count`: lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from larpo.candidates import CandidateList


def list_statistics(
    pool: list[CandidateList], kept: int, judge: Callable[[str, str], float] | None = None
) -> dict[str, float | dict[str, float]]:
    """Statistics of one iteration's ranked lists (`pool`, best first), `kept` of them trained on."""
    n = max(1, len(pool))
    levels = Counter(len(set(lst.rewards)) for lst in pool)
    out: dict = {
        "count": len(pool),
        "levels": {str(k): levels[k] / n for k in sorted(levels)},
        "two_levels": sum(v for k, v in levels.items() if k >= 2) / n,
        "three_levels": sum(v for k, v in levels.items() if k >= 3) / n,
        "dropped": (len(pool) - kept) / n,
        "single_pair": sum(len(lst) == 2 for lst in pool) / n,
        "mean_size": sum(len(lst) for lst in pool) / n,
    }
    if judge is not None:
        gold = [[judge(lst.prompt, r) for r in lst.responses] for lst in pool]
        out["top_correct"] = sum(bool(g) and g[0] == 1.0 for g in gold) / n
        out["top_not_best"] = sum(bool(g) and g[0] < max(g) for g in gold) / n
    return out


def duel_statistics(rewards: list[list[float]], baseline: list[list[float]]) -> float:
    """Share of evaluation duels (policy sample i against SFT sample i) where both are wrong
    (gold reward below 1): the duels only a graded judge can decide."""
    duels = [(a, b) for ra, rb in zip(rewards, baseline, strict=True) for a, b in zip(ra, rb, strict=True)]
    return sum(a < 1.0 and b < 1.0 for a, b in duels) / max(1, len(duels))
