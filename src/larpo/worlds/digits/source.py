"""The digits world as a data source (`data=digits`): seeded distinct prompts, the true sum as
reference, the per-digit gold judge and the world's SFT stage."""

from __future__ import annotations

from larpo.data.contract import Source
from larpo.worlds.digits import task as world
from larpo.worlds.sft import world_source


def digits(task: world.DigitsTask, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int) -> Source:
    return world_source(task, world, prompts_per_iteration, eval_prompts, eval_seed, seed)
