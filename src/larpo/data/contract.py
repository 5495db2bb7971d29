"""The data-source contract: what a data option gives a run.

Each option of the `data` group names a function (`_target_`, `_partial_: true`) that is called
with the run's `prompts_per_iteration` and `seed` and returns a `Source`: training prompts,
held-out prompts, and what is known about their answers. An embedded world (`larpo.worlds`) is
reached only this way: its source carries its gold judge, its task and its SFT stage, so no
generic module imports a world.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from larpo.candidates import CandidateList

# the unrelated-response negatives of real data: replies to prompts of another dataset (B.4 (1))
UNRELATED = [
    "Here is a haiku about autumn leaves: red and gold they fall, the wind carries them away.",
    "The capital of Australia is Canberra, not Sydney.",
    "To make a cup of tea, steep the leaves in hot water for three to five minutes.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "I would recommend reading the documentation of the library before upgrading it.",
    "A good stretching routine warms up the muscles before a run.",
]


def unrelated_text(rng: random.Random) -> str:
    return rng.choice(UNRELATED)


class SFTStage(Protocol):
    """An embedded world's SFT stage: the directory of its initial policy for a `model` config
    node (its `arch` and `sft` keys) and a seed, trained first if not cached."""

    def __call__(self, model_cfg: Any, seed: int, progress: bool = True) -> Path: ...


@dataclass
class Source:
    """Training prompts, held-out prompts, and what is known about their answers."""

    train: list[str]
    eval: list[str]
    reference: Callable[[str], str | None] | None = None  # the gold answer text, where there is one
    judge: Callable[[str, str], float] | None = None  # gold judge for evaluation (None: none built in)
    unrelated: Callable[[random.Random], str] = unrelated_text
    given: list[CandidateList] | None = None  # data=lists: the lists to train on
    report: dict = field(default_factory=dict)  # lines read, skipped lines with their reasons
    task: object | None = None  # an embedded world's task (its learned reward model uses it)
    sft: SFTStage | None = None  # an embedded world's SFT stage (model=tiny)
    answers: Callable[[str], list[str]] | None = None  # a window of plausible answers (exact evaluation)
    # held-out prompts of its own for choosing hyperparameters, never trained on and disjoint from
    # `eval` (evaluated as val_* when eval.validation > 0); None: eval.validation splits a share off `eval`
    validation: list[str] | None = None


class DataSource(Protocol):
    """A data option's `_target_`, with its own keys bound by `_partial_: true`."""

    def __call__(self, *, prompts_per_iteration: int, seed: int) -> Source: ...
