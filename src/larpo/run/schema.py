"""The schema of the loop's own keys: the `candidate_list` group, `eval` and `optimizer`."""

from __future__ import annotations

from dataclasses import dataclass

from larpo.config.fields import Memory, Schedule, at_least, num, positive
from larpo.rewards.schema import RewardModelSchema


@dataclass
class CandidateListSchema:
    size: int | None = at_least(2, 8)  # null: as many as the objective keeps
    memory: Memory = Memory.current
    temperatures: list[float] | None = positive(example=1.0)
    schedule: list[float] | None = positive(example=1.0)
    drop_truncated: bool = False  # a sample cut at max_new_tokens (no EOS) never enters a list
    missing_eos_penalty: float | None = num(example=1.0, ge=0)  # subtracted from a cut sample's reward


@dataclass
class Eval:
    prompts: int | None = at_least(1, 100)  # null: every held-out prompt (of the test split)
    validation: float = num(0.0, example=0.3, ge=0, lt=1)  # share of held-out prompts set aside (val_* metrics)
    samples: int = at_least(1, 8)
    temperature: float = positive(1.0)
    every_iteration: bool = True
    exact: bool = True  # exact_* metrics from the policy's distribution, where the world lists its answers
    sharpen: list[float] | None = num(example=0.5, ge=0)  # the SFT policy at these temperatures, untrained
    cache: bool = True  # the SFT policy's evaluation computed once per (policy, evaluation config)
    ranking: bool = True  # ndcg and ranking_accuracy (a log-prob pass over the judged lists)
    judge: RewardModelSchema | None = None  # a reward_model option judging held-out samples (judge_* metrics)


@dataclass
class Optimizer:
    weight_decay: float = num(0.0, example=0.01, ge=0)  # AdamW's decoupled weight decay
    warmup_ratio: float = num(0.0, example=0.1, ge=0, lt=1)  # share of the run's steps warming up linearly
    schedule: Schedule = Schedule.constant  # after warm-up: constant, or linear / cosine decay to 0
