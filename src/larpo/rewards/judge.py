"""`reward_model=judge`: the data source's gold judge used as the reward model; `noisy_judge`: the
same with seeded noise, a reranker that is sometimes wrong about the top."""

from __future__ import annotations

import hashlib
import random

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


class NoisyJudgeReward(JudgeReward):
    """`reward_model=noisy_judge`: the gold judge plus seeded Gaussian noise of standard deviation
    `noise`, an imperfect reranker whose top candidate is sometimes not the best. The noise of a
    (prompt, response) pair is a function of the run's seed and the pair, so the same candidate
    always gets the same score (as from a fixed reward model), in any list, process or resume."""

    def __init__(self, noise: float, context: RewardContext):
        super().__init__(context)
        self.noise, self.seed = noise, context.seed

    def noise_of(self, prompt: str, response: str) -> float:
        digest = hashlib.sha256(f"{self.seed}\0{prompt}\0{response}".encode()).digest()
        return self.noise * random.Random(digest).gauss(0.0, 1.0)

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        gold = super().score(prompts, candidates)
        return [
            [g + self.noise_of(p, r) for g, r in zip(gs, rs, strict=True)]
            for p, gs, rs in zip(prompts, gold, candidates, strict=True)
        ]
