"""The negatives-strategy contract: how positives and negatives are chosen from a ranked list.

Each option of the `negatives` group names a class with `_target_`; an instance must satisfy
`Strategy`:
- `temperature`: its own sampling temperature, or None for the run's;
- `uses_reference`: the reference answer joins the list (as the positive) where the task has one;
- `source`: the source its foreign negatives carry in the pool (policy, other_prompt, unrelated);
- `foreign(prompts, samples, n, rng, unrelated)`: n negatives per prompt that are not this
  prompt's samples (empty lists when it has none);
- `select(lst, positives, negatives)`: indices into the ranked list (best first) to train on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from larpo.candidates import CandidateList


@runtime_checkable
class Strategy(Protocol):
    temperature: float | None
    uses_reference: bool
    source: str

    def foreign(
        self,
        prompts: list[str],
        samples: list[list[str]],
        n: int,
        rng: random.Random,
        unrelated: Callable[[random.Random], str],
    ) -> list[list[str]]: ...

    def select(self, lst: CandidateList, positives: int, negatives: int) -> list[int]: ...
