"""Choosing positives and negatives from a ranked candidate list (Figure 3a of the paper).

Strategies (conf/negatives/):
- ranked:  the top `positives` and the bottom `negatives` of the policy's own ranked samples;
- hardest: the positive is the reference answer (or the top sample); negatives are the
           lowest-ranked samples worse than it, sampled at a low temperature;
- hard:    the same, sampled at a high temperature;
- easy:    the negative is a response to a different prompt of the same dataset;
- easiest: the negative is a response unrelated to the task.
Each candidate carries its source: policy, reference, other_prompt or unrelated.
"""

from __future__ import annotations

import random

from larpo.candidates import CandidateList

STRATEGIES = {"ranked", "hardest", "hard", "easy", "easiest"}
FOREIGN = {"easy": "other_prompt", "easiest": "unrelated"}


def uses_reference(strategy: str) -> bool:
    """Strategies whose positive is the task's reference answer where it has one."""
    return strategy in {"hardest", "hard", "easy", "easiest"}


def foreign_negatives(
    strategy: str, prompts: list[str], samples: list[list[str]], n: int, rng: random.Random, unrelated
) -> list[list[str]]:
    """For `easy`: responses sampled for *other* prompts; for `easiest`: unrelated responses.

    An easy negative is never a response of the same prompt: it comes from a different prompt's
    samples and is skipped if the same text was also sampled for this prompt.
    """
    if strategy == "easiest":
        return [[unrelated(rng) for _ in range(n)] for _ in prompts]
    if strategy != "easy":
        return [[] for _ in prompts]
    if len(prompts) < 2:
        raise ValueError("negatives=easy needs at least 2 prompts to borrow responses from")
    out = []
    for i, own in enumerate(samples):
        own_set, picked = set(own), []
        for _ in range(20 * n):
            j = rng.randrange(len(prompts) - 1)
            j += j >= i  # any prompt but i
            r = rng.choice(samples[j]) if samples[j] else ""
            if r and r not in own_set and r not in picked and prompts[j] != prompts[i]:
                picked.append(r)
            if len(picked) == n:
                break
        out.append(picked)
    return out


def select(lst: CandidateList, strategy: str, positives: int, negatives: int) -> list[int]:
    """Indices (into the ranked list `lst`, best first) of the candidates to train on."""
    n, sources = len(lst), lst.sources
    if strategy == "ranked":
        if n <= positives + negatives:
            return list(range(n))
        return list(range(positives)) + list(range(n - negatives, n))
    ordered = [i for i in range(n) if sources[i] == "reference"] + [
        i for i in range(n) if sources[i] == "policy"
    ]
    pos = ordered[:positives] if strategy in {"hard", "hardest"} else ordered[:1]
    if not pos:
        return []
    best = lst.rewards[pos[0]]
    if strategy in FOREIGN:
        pool = [i for i in range(n) if sources[i] == FOREIGN[strategy]]
    else:
        pool = [i for i in range(n) if sources[i] == "policy" and i not in pos]
    neg = [i for i in pool if lst.rewards[i] < best][-negatives:]
    return sorted(pos + neg)
