"""The schema of the loop's own keys: the `candidate_list` group and `optimizer` (`eval`: larpo.evaluation.schema)."""

from __future__ import annotations

from dataclasses import dataclass

from larpo.config.fields import Memory, Schedule, at_least, num, positive


@dataclass
class CandidateListSchema:
    size: int | None = at_least(2, 8)  # null: as many as the objective keeps
    memory: Memory = Memory.current
    temperatures: list[float] | None = positive(example=1.0)
    schedule: list[float] | None = positive(example=1.0)
    drop_truncated: bool = False  # a sample cut at max_new_tokens (no EOS) never enters a list
    missing_eos_penalty: float | None = num(example=1.0, ge=0)  # subtracted from a cut sample's reward


@dataclass
class Optimizer:
    weight_decay: float = num(0.0, example=0.01, ge=0)  # AdamW's decoupled weight decay
    warmup_ratio: float = num(0.0, example=0.1, ge=0, lt=1)  # share of the run's steps warming up linearly
    schedule: Schedule = Schedule.constant  # after warm-up: constant, or linear / cosine decay to 0
