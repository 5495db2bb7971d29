"""The `negatives` group's schema."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from larpo.fields import positive


@dataclass
class NegativesSchema:
    _target_: str = ""
    temperature: float | None = positive(example=0.7)  # the strategy's own sampling temperature
    keep_from_samples: bool = False  # positives and negatives both come from the ranked samples
    capabilities: typing.ClassVar = ("keep_from_samples",)
