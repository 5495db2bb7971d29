"""The `trainer` group's schema: Lightning Trainer arguments, with the strategy that parallelises training."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from larpo.fields import at_least, num


@dataclass
class TrainerSchema:
    accelerator: str = "cpu"
    devices: Any = 1
    precision: str = "32-true"
    log_every_n_steps: int = at_least(1, 10)
    gradient_clip_val: float | None = num(example=1.0, ge=0)
    accumulate_grad_batches: int = at_least(1, 1)  # optimizer step every N batches (effective batch N x batch_size)
    requires: dict[str, str] | None = None
    shards_parameters: bool = False  # FSDP: the policy's weights live in shards across ranks
    capabilities: typing.ClassVar = ("requires", "shards_parameters")
