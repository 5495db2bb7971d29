"""`reward_model=judge`: the data source's gold judge used as the reward model."""

from __future__ import annotations

from tqdm.auto import tqdm

from larpo.rewards.contract import RewardContext


class JudgeReward:
    """The data source's gold judge used as the reward model (`reward_model=judge`)."""

    list_relative = False

    def __init__(self, context: RewardContext):
        if context.source.judge is None:
            raise ValueError("reward_model=judge needs a data source with a gold judge, e.g. data=arithmetic")
        self.judge, self.progress = context.source.judge, context.progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        pairs = zip(prompts, candidates, strict=True)
        return [
            [self.judge(p, r) for r in rs]
            for p, rs in tqdm(
                pairs, total=len(prompts), desc="score", disable=None if self.progress else True, leave=False
            )
        ]
