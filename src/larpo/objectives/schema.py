"""The `objective` group's schema: what an objective option may hold, with types and ranges."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from larpo.config.fields import at_least, num, positive


@dataclass
class Keep:
    positives: int = at_least(1, 1)
    negatives: int | None = at_least(1, 1)  # null: all the rest of the list


@dataclass
class ObjectiveSchema:
    """`_target_`: a loss function with the objective contract; the other keys below the
    capabilities are its keyword hyperparameters."""

    _target_: str = ""
    keep: Keep = field(default_factory=Keep)
    sft_weight: float = num(0.0, example=1.0, ge=0)
    needs_reference: bool = True
    needs_lengths: bool = False
    erase_below_top: bool = False  # the control: the objective sees the top against the rest, no order below
    # hyperparameters of the shipped objectives (a user's objective may add its own)
    beta: float | None = positive(example=0.1)
    alpha: float | None = positive(example=1.0)
    gamma: float | None = num(example=1.0, ge=0)
    delta: float | None = positive(example=1.0)
    temperature: float | None = positive(example=1.0)
    reg_weight: float | None = num(example=0.1, ge=0)
    ft_weight: float | None = num(example=1.0, ge=0)
    nll_weight: float | None = num(example=1.0, ge=0)
    desirable_weight: float | None = num(example=1.0, ge=0)
    undesirable_weight: float | None = num(example=1.0, ge=0)
    normalize: bool | None = None
    dynamic_temperature: bool | None = None

    capabilities: typing.ClassVar = ("keep", "sft_weight", "needs_reference", "needs_lengths", "erase_below_top")
