"""The digits world as a data source (`data=digits`): seeded distinct prompts, the true sum as
reference, the per-digit gold judge and the world's SFT stage."""

from __future__ import annotations

from larpo.data.contract import Source
from larpo.worlds.digits.task import DigitsTask, held_out, judge, reference, unrelated_response, window
from larpo.worlds.sft import TinySFT


def digits(task: DigitsTask, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int) -> Source:
    evaluation = held_out(task, eval_prompts, eval_seed)
    return Source(
        task.prompts(prompts_per_iteration, seed=seed + 101, exclude=set(evaluation), distinct=True),
        evaluation,
        reference=reference,
        judge=judge,
        unrelated=unrelated_response,
        task=task,
        sft=TinySFT(task, tuple(evaluation), eval_prompts, eval_seed),
        answers=window,
    )
