"""The `reward_model` group's schema."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from larpo.fields import DType, at_least, num, positive, share


@dataclass
class RewardModelSchema:
    _target_: str = ""
    path: str | None = None
    batch_size: int | None = at_least(1, 64)
    tokens: int | None = at_least(16)  # padded tokens per scoring forward pass (sequence classifiers)
    dtype: DType | None = None
    trust_remote_code: bool | None = None
    pairs: int | None = at_least(2, 20000)
    truth_share: float | None = share()
    label_noise: float | None = num(example=0.1, ge=0, lt=0.5)  # 0.5 would be pure noise
    epochs: int | None = at_least(1, 3)
    lr: float | None = positive(example=3e-4)
    noise: float | None = num(example=0.1, ge=0)  # noisy_judge: standard deviation of the added noise
    uses_reference: bool = False
    needs_task: bool = False
    requires: dict[str, str] | None = None  # module: pip package
    capabilities: typing.ClassVar = ("uses_reference", "needs_task", "requires")
