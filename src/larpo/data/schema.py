"""The `data` group's schema, with an embedded world's task."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from larpo.fields import at_least, num, share


@dataclass
class Task:
    """An embedded world's task (`data.task`): the keys of the shipped worlds' tasks."""

    _target_: str = ""
    max_digits: int = num(2, example=2, ge=1, le=6)
    # the arithmetic world
    ops: str | None = None
    noise: float | None = share()
    noise_scale: int | None = at_least(1, 10)
    # the digits world
    min_digits: int | None = num(example=3, ge=1, le=6)
    first_carry_drop: float | None = share()
    carry_drop: float | None = share()
    slip: float | None = share()


@dataclass
class DataSchema:
    _target_: str = ""
    path: str | None = None
    eval_path: str | None = None
    prompts_per_iteration: int = at_least(1, 2048)
    eval_prompts: int = at_least(0, 1000)
    eval_seed: int = at_least(0, 12345)
    pool: int | None = at_least(2, 1000)  # data=word_problems: distinct problems made
    kinds: list[str] | None = None  # data=word_problems: the problem types mixed (add, sub, mul, div, mul_add)
    max_number: int | None = num(example=20, ge=3, le=10000)  # data=word_problems: bound of sums and differences
    shots: int | None = num(example=1, ge=0, le=1)  # data=word_problems: worked examples before each question
    validation_prompts: int | None = at_least(
        0, 100
    )  # data=word_problems: its own validation split (eval.validation>0)
    task: Task | None = None
    evaluate: bool | None = None
    world: typing.Any = None  # data=lists: the embedded world's data option (its SFT stage and judge)
    has_reference: bool = False
    has_sft: bool = False  # an embedded world that trains its own tiny policy (model=tiny)
    requires: dict[str, str] | None = None
    # the task's own checks of its first lists (larpo-lists --gates): {list statistic: [low, high]}
    gates: dict[str, list[float]] | None = None
    capabilities: typing.ClassVar = ("has_reference", "has_sft", "requires", "gates")
