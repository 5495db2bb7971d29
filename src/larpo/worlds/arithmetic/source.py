"""The arithmetic world as a data source (`data=arithmetic`): seeded prompts, the true answer as
reference and the gold judge. Evaluation prompts are a fixed held-out set that SFT and training
never see."""

from __future__ import annotations

from larpo.source import Source
from larpo.worlds.arithmetic.task import ArithmeticTask, judge, true_answer, unrelated_response


def held_out(task: ArithmeticTask, eval_prompts: int, eval_seed: int) -> list[str]:
    """The held-out pool: a fixed seeded set that SFT and training prompts never include."""
    return task.prompts(eval_prompts, seed=eval_seed) if eval_prompts else []


def reference(prompt: str) -> str:
    return str(true_answer(prompt))


def arithmetic(
    task: ArithmeticTask, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int
) -> Source:
    evaluation = held_out(task, eval_prompts, eval_seed)
    return Source(
        task.prompts(prompts_per_iteration, seed=seed + 101, exclude=set(evaluation)),
        evaluation,
        reference=reference,
        judge=judge,
        unrelated=unrelated_response,
        task=task,
    )
