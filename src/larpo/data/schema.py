"""The `data` group's schema, with an embedded world's task."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from larpo.config.fields import at_least, num, share


@dataclass
class Task:
    _target_: str = ""
    ops: str = "+"
    max_digits: int = num(2, example=2, ge=1, le=6)
    noise: float = share(0.3)
    noise_scale: int = at_least(1, 10)


@dataclass
class DataSchema:
    _target_: str = ""
    path: str | None = None
    eval_path: str | None = None
    prompts_per_iteration: int = at_least(1, 2048)
    eval_prompts: int = at_least(0, 1000)
    eval_seed: int = at_least(0, 12345)
    task: Task | None = None
    evaluate: bool | None = None
    world: typing.Any = None  # data=lists: the embedded world's data option (its SFT stage and judge)
    has_reference: bool = False
    has_sft: bool = False  # an embedded world that trains its own tiny policy (model=tiny)
    requires: dict[str, str] | None = None
    capabilities: typing.ClassVar = ("has_reference", "has_sft", "requires")
