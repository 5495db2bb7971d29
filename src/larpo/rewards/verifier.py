"""`reward_model=verifier`: GSM8K-style checking of the final number against the reference answer."""

from __future__ import annotations

from tqdm.auto import tqdm

from larpo.data.answers import answers_match
from larpo.rewards.contract import RewardContext


class VerifierReward:
    """GSM8K-style answer checking: 1 when the final number of a response equals the reference
    answer's numerically, else 0 (a missing number is 0). Never a substring match."""

    list_relative = False

    def __init__(self, context: RewardContext):
        if context.source.reference is None:
            raise ValueError("reward_model=verifier needs reference answers, e.g. data=gsm8k")
        self.reference, self.progress = context.source.reference, context.progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        out = []
        for p, rs in tqdm(
            zip(prompts, candidates, strict=True),
            total=len(prompts),
            desc="score",
            disable=None if self.progress else True,
            leave=False,
        ):
            ref = self.reference(p)
            out.append([float(ref is not None and answers_match(r, ref)) for r in rs])
        return out
