"""The reranker's side of an iteration: score the candidates with the reward model, merge the
candidate-list memory, clean and rank each list, and choose the positives and negatives."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from larpo.candidates import CandidateList, all_tied, clean, merge_memory, rank
from larpo.negatives.contract import Strategy
from larpo.parallel.shard import Shard
from larpo.rewards.contract import RewardModel


@dataclass
class Selection:
    """One iteration's ranked lists: all of them (the pool), and those kept for training."""

    pool: list[CandidateList] = field(default_factory=list)
    kept: list[CandidateList] = field(default_factory=list)  # the chosen candidates of each kept list
    kept_in_pool: list[CandidateList] = field(default_factory=list)  # their full lists, in the pool
    dropped: Counter = field(default_factory=Counter)


@dataclass
class Truncation:
    """Samples cut at `max_new_tokens` without EOS (`candidate_list.drop_truncated`,
    `candidate_list.missing_eos_penalty`): dropped from their list (counted as `truncated`), or
    their reward lowered by the penalty before ranking (the pool records the penalised reward)."""

    drop: bool = False
    penalty: float = 0.0

    def __call__(self, lst: CandidateList, dropped: Counter) -> CandidateList:
        cut = [i for i in range(len(lst)) if not lst.ended(i)]
        if not cut:
            return lst
        if self.drop:
            dropped["truncated"] += len(cut)
            return lst.subset([i for i in range(len(lst)) if lst.ended(i)])
        if self.penalty:
            lst = lst.subset(list(range(len(lst))))
            lst.rewards = [w - self.penalty if i in cut else w for i, w in enumerate(lst.rewards)]
        return lst


class Ranker:
    def __init__(
        self,
        reward_model: RewardModel | None,
        strategy: Strategy,
        memory: str,
        positives: int,
        negatives: int,
        erase_below_top: bool = False,
        truncation: Truncation | None = None,
        dedupe: bool = True,
    ):
        """`erase_below_top`: the control that erases the order below the top of every training
        list (`objective.erase_below_top`); the pool keeps the reward model's scores.
        `truncation`: what happens to samples cut at the token cap before ranking.
        `dedupe=False` (`objective.dedupe`): a list keeps identical samples (a GRPO group)."""
        self.reward_model, self.strategy, self.memory = reward_model, strategy, memory
        self.positives, self.negatives, self.erase_below_top = positives, negatives, erase_below_top
        self.truncation = truncation or Truncation()
        self.dedupe = dedupe

    @property
    def rescores_merged(self) -> bool:
        """A list-relative reward model's scores change with the list, so a merged list is scored again."""
        return bool(getattr(self.reward_model, "list_relative", False)) and self.memory != "current"

    def score(self, lists: list[CandidateList], shard: Shard) -> None:
        """Reward-model scores; each rank scores its share of the lists and the scores are gathered."""
        idx = shard.mine(len(lists))
        scores = self.reward_model.score([lists[i].prompt for i in idx], [lists[i].responses for i in idx])
        gathered = shard.gather(dict(zip(idx, scores, strict=True)), len(lists))
        for lst, s in zip(lists, gathered, strict=True):
            lst.rewards = [float(x) for x in s]

    def admit(self, lists: dict[str, CandidateList]) -> tuple[dict[str, CandidateList], Counter]:
        """An iteration's scored samples as they enter the memory: empty responses, non-finite
        rewards and (`candidate_list.drop_truncated`) cut samples dropped, counted once, and cut
        samples penalised once. The memory then holds what the pool files hold, so a resumed or
        extended run rebuilds it exactly."""
        dropped: Counter = Counter()
        return {p: self.truncation(clean(lst, dropped), dropped) for p, lst in lists.items()}, dropped

    def merge(self, history: list[dict[str, CandidateList]]) -> dict[str, CandidateList]:
        return merge_memory(history, self.memory, self.dedupe)

    def select(self, merged: dict[str, CandidateList], dropped: Counter | None = None) -> Selection:
        """Rank each merged list and choose its candidates; `dropped`: the counts of `admit`."""
        out = Selection(dropped=Counter(dropped or {}))
        for lst in merged.values():
            lst = rank(clean(lst, out.dropped))  # a list-relative reward model rescored the merged list
            idx = self.strategy.select(lst, self.positives, self.negatives)
            out.pool.append(lst)
            chosen = lst.subset(idx)
            if len(chosen) < 2:
                out.dropped["too_few_candidates"] += 1
            elif all_tied(chosen):
                out.dropped["all_tied"] += 1
            else:
                lst.kept = idx
                out.kept.append(self.for_training(chosen))
                out.kept_in_pool.append(lst)
        return out

    def for_training(self, chosen: CandidateList) -> CandidateList:
        """The list the objective sees: the chosen candidates, best first; with `erase_below_top`,
        every candidate below the top level gets the same reward (their mean), so the list says
        "the top against the rest" and nothing about the order of the rest."""
        return erase_below_top(chosen) if self.erase_below_top else chosen


def erase_below_top(lst: CandidateList) -> CandidateList:
    """A copy of a ranked list (best first) whose candidates below the top reward level all get
    the mean of their rewards. Candidates tied with the top stay at the top; the order of the
    candidates is kept."""
    top = lst.rewards[0]
    below = [w for w in lst.rewards if w != top]
    out = lst.subset(list(range(len(lst))))
    if below:
        level = sum(below) / len(below)
        out.rewards = [w if w == top else level for w in lst.rewards]
    return out
