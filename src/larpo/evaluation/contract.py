"""The evaluation contract: how a policy is measured on held-out prompts.

A run builds one `PolicyEvaluator` (run/build.py composes the shipped ones: the gold judge's
sampled and greedy metrics, the exact window, a reward model as judge, a validation split) and
the loop calls it on the starting policy first, then after each iteration:
- `prompts`: the held-out prompts it measures on (the SFT evaluation's cache key holds them);
- `set_baseline(model, tokenizer)`: the starting policy, whose answers later policies are
  compared with (win rates); called once, or replaced by `load_state` from the cache;
- `state()` / `load_state(state)`: that baseline as plain JSON data;
- `__call__(model, tokenizer) -> {metric: float}`: the metrics of a policy (docs/formats.md
  names them); `sharpened(model, tokenizer, temperature)`: the starting policy's metrics when
  sampled at another temperature, untrained (the sharpening control).
A gold judge is a `Judge`: `judge(prompt, response) -> float`, 1.0 for a fully right answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

Judge = Callable[[str, str], float]


@runtime_checkable
class PolicyEvaluator(Protocol):
    prompts: list[str]

    def set_baseline(self, model, tokenizer) -> None: ...

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...

    def __call__(self, model, tokenizer) -> dict[str, float]: ...

    def sharpened(self, model, tokenizer, temperature: float) -> dict[str, float]: ...
