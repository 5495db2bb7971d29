"""The `objective` group's schema: what an objective option may hold, with types and ranges."""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, field

from larpo.fields import at_least, num, positive


class ScaleRewards(enum.Enum):
    group = "group"  # each list's standard deviation (TRL's default)
    batch = "batch"  # the standard deviation over the lists of one forward
    none = "none"  # unscaled (Dr. GRPO)


class LossType(enum.Enum):
    grpo = "grpo"  # the mean over candidates of each one's per-token mean
    bnpo = "bnpo"  # the sum over the batch's tokens / their count
    dr_grpo = "dr_grpo"  # the sum / (candidates x max_completion_length)
    dapo = "dapo"  # as bnpo over one forward (TRL: over the accumulated batch)


class SamplingLevel(enum.Enum):
    token = "token"  # TRL's default; exact while the ratio is 1 (the first pass)
    sequence = "sequence"  # GSPO: exp of the mean per-token log-ratio, exact from summed log-probs


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
    policy_gradient: bool = False  # GRPO/RLOO: a ratio to the sampling policy, no beta, lists of 2 or more
    dedupe: bool = True  # false: a list keeps identical samples (a GRPO group)
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
    scale_rewards: ScaleRewards | None = None
    loss_type: LossType | None = None
    epsilon: float | None = num(example=0.2, gt=0, lt=1)
    epsilon_high: float | None = positive(example=0.28)
    importance_sampling_level: SamplingLevel | None = None
    max_completion_length: int | None = at_least(1, 64)
    normalize_advantages: bool | None = None
    positives: int | None = at_least(1, 1)  # contrastive: the positives in its numerator (keep.positives)

    capabilities: typing.ClassVar = (
        "keep",
        "sft_weight",
        "needs_reference",
        "needs_lengths",
        "erase_below_top",
        "policy_gradient",
        "dedupe",
    )
