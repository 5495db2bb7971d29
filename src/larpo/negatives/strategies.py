"""Choosing positives and negatives from a ranked candidate list (Figure 3a of the paper).

Strategies (src/larpo/conf/negatives/, each names one of these classes with `_target_`):
- ranked (`TopAndBottom`):      the top `positives` and the bottom `negatives` of the policy's own ranked samples;
- hardest, hard (`SamePrompt`): the positive is the reference answer (or the top sample); negatives
                          are the lowest-ranked samples worse than it, sampled at the strategy's own
                          temperature (low for hardest, high for hard);
- easy (`OtherPrompt`):   the negative is a response to a different prompt of the same dataset;
- easiest (`Unrelated`):  the negative is a response unrelated to the task.
Each candidate carries its source: policy, reference, other_prompt or unrelated.

Each satisfies `larpo.negatives.contract.Strategy`.
"""

from __future__ import annotations

from larpo.candidates import CandidateList


class TopAndBottom:
    """The reward model's ranking of the policy's own samples: top positives, bottom negatives."""

    uses_reference = False
    source = "policy"

    def __init__(self, temperature: float | None = None):
        self.temperature = temperature

    def foreign(self, prompts, samples, n, rng, unrelated) -> list[list[str]]:
        return [[] for _ in prompts]

    def select(self, lst: CandidateList, positives: int, negatives: int) -> list[int]:
        """Indices (into the ranked list `lst`, best first) of the candidates to train on."""
        n = len(lst)
        if n <= positives + negatives:
            return list(range(n))
        return list(range(positives)) + list(range(n - negatives, n))


class SamePrompt(TopAndBottom):
    """The reference answer (or the top sample) against this prompt's samples ranked below it."""

    uses_reference = True

    def _positives(self, lst: CandidateList, positives: int) -> list[int]:
        ordered = [i for i in range(len(lst)) if lst.sources[i] == "reference"]
        ordered += [i for i in range(len(lst)) if lst.sources[i] == "policy"]
        return ordered[:positives]

    def select(self, lst: CandidateList, positives: int, negatives: int) -> list[int]:
        pos = self._positives(lst, positives)
        if not pos:
            return []
        best = lst.rewards[pos[0]]
        pool = [i for i in range(len(lst)) if lst.sources[i] == self.source and i not in pos]
        neg = [i for i in pool if lst.rewards[i] < best][-negatives:]
        return sorted(pos + neg)


class Unrelated(SamePrompt):
    """Negatives that answer nothing the task asks (the data source's unrelated responses)."""

    source = "unrelated"

    def foreign(self, prompts, samples, n, rng, unrelated) -> list[list[str]]:
        return [[unrelated(rng) for _ in range(n)] for _ in prompts]

    def _positives(self, lst: CandidateList, positives: int) -> list[int]:
        return super()._positives(lst, 1)


class OtherPrompt(Unrelated):
    """Negatives sampled for *other* prompts of the same dataset."""

    source = "other_prompt"

    def foreign(self, prompts, samples, n, rng, unrelated) -> list[list[str]]:
        """An easy negative is never a response of the same prompt: it comes from a different
        prompt's samples and is skipped if the same text was also sampled for this prompt."""
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
