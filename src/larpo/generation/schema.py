"""The `generator` group's schema."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from larpo.fields import at_least, num


@dataclass
class GeneratorSchema:
    _target_: str = ""
    batch_size: int | None = at_least(1, 1024)
    max_new_tokens: int = at_least(1, 8)
    stop: list[str] | None = None  # regular expressions that end an answer where one first matches
    compact: bool | None = None  # hf: decode with ended rows dropped from the batch (same distribution)
    tensor_parallel_size: int | None = at_least(1, 1)
    gpu_memory_utilization: float | None = num(example=0.4, gt=0, le=1)
    requires: dict[str, str] | None = None
    capabilities: typing.ClassVar = ("requires",)
