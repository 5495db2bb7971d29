"""The arithmetic world as a data source (`data=arithmetic`): seeded prompts, the true answer as
reference, the gold judge and the world's SFT stage. Evaluation prompts are a fixed held-out set
that SFT and training never see."""

from __future__ import annotations

from larpo.data.contract import Source
from larpo.worlds.arithmetic import task as world
from larpo.worlds.sft import world_source


def arithmetic(
    task: world.ArithmeticTask, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int
) -> Source:
    return world_source(task, world, prompts_per_iteration, eval_prompts, eval_seed, seed)
