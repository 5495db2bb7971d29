"""The `report` keys an experiment file sets: how `larpo-report` draws and decides a sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from larpo.fields import Figure


@dataclass
class Report:
    figure: Figure = Figure.bar
    x: str | None = None
    order: list[Any] | None = None
    baseline: str | None = None
    claims: list[str] | None = None
    metric: str | None = None
    tune: str | None = None  # an override chosen per setting on a validation metric, e.g. lr
    tune_by: str = "val_win_rate_vs_sft"
