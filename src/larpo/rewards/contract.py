"""The reward-model contract: a reranker that scores every candidate of each prompt's list.

Each option of the `reward_model` group names a class (or a user's) with `_target_` and
`_partial_: true`; it is built with the run's `RewardContext` as `context` and must satisfy
`RewardModel`:
- `score(prompts, candidates) -> [[float]]`, one reward per candidate, in the lists' layout;
- `list_relative`: True when a score depends on the other candidates of the list (a pairwise
  ranker); such a model is run again on merged lists, never stitched from old scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from larpo.data.contract import Source


@runtime_checkable
class RewardModel(Protocol):
    list_relative: bool

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]: ...


@dataclass
class RewardContext:
    """What a reward model may need from the run: each option's `_partial_` target takes it as
    `context` and uses only what it needs."""

    source: Source  # reference answers, gold judge, an embedded world's task
    policy_path: str  # the initial policy (a learned reward model starts from its backbone)
    cache_dir: str
    seed: int
    device: str | None = None
    progress: bool = True
