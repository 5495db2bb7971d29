"""The schema of the `eval` keys: how held-out prompts measure a policy."""

from __future__ import annotations

from dataclasses import dataclass

from larpo.fields import at_least, num, positive
from larpo.rewards.schema import RewardModelSchema


@dataclass
class Eval:
    prompts: int | None = at_least(1, 100)  # null: every held-out prompt (of the test split)
    # share of held-out prompts set aside (val_* metrics); where the data holds out its own
    # validation prompts (word_problems), any value above 0 evaluates those instead
    validation: float = num(0.0, example=0.3, ge=0, lt=1)
    samples: int = at_least(1, 8)
    seed: int | None = at_least(0, 0)  # the evaluation's sampling seed (null: the run's): vary apart from training
    temperature: float = positive(1.0)
    every_iteration: bool = True
    exact: bool = True  # exact_* metrics from the policy's distribution, where the world lists its answers
    sharpen: list[float] | None = num(example=0.5, ge=0)  # the SFT policy at these temperatures, untrained
    cache: bool = True  # the SFT policy's evaluation computed once per (policy, evaluation config)
    ranking: bool = True  # ndcg and ranking_accuracy (a log-prob pass over the judged lists)
    judge: RewardModelSchema | None = None  # a reward_model option judging held-out samples (judge_* metrics)
