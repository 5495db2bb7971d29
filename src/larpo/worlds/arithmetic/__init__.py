"""The embedded arithmetic world, all in one place: the task and its gold judge (`task`), the SFT
stage of its tiny policy (`sft`), its learned reward model (`reward`) and its data source (`source`).
"""

from larpo.worlds.arithmetic.task import (  # noqa: F401  (the world's public names)
    ArithmeticTask,
    build_tokenizer,
    judge,
    parse_answer,
    true_answer,
    unrelated_response,
)
