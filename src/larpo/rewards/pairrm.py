"""`reward_model=pairrm`: LLM-Blender's PairRM, a list-relative pairwise ranker."""

from __future__ import annotations

from larpo.rewards.contract import RewardContext
from larpo.sequences import messages


class PairRMReward:
    """LLM-Blender's PairRM, a pairwise ranker (`pip install llm-blender`, imported only here).

    It compares the candidates of one list with each other, so its scores are relative to the
    list (`list_relative`): a merged list is scored again, never stitched from old scores.
    """

    list_relative = True

    def __init__(self, path: str = "llm-blender/PairRM", batch_size: int = 16, context: RewardContext | None = None):
        progress = context.progress if context else True
        try:
            import llm_blender
        except ImportError:
            raise ImportError("reward_model=pairrm needs the llm-blender package: pip install llm-blender") from None
        self.blender = llm_blender.Blender()
        self.blender.loadranker(path)
        self.batch_size, self.progress = batch_size, progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [messages(p)[-1]["content"] for p in prompts]
        scores = self.blender.rank(
            texts, candidates, return_scores=True, batch_size=self.batch_size, disable_tqdm=not self.progress
        )
        return [[float(x) for x in row] for row in scores]
