"""`data=ultrafeedback`: chat-format prompts with no gold judge (evaluate with larpo-generate
and AlpacaEval)."""

from __future__ import annotations

from larpo.data.contract import Source
from larpo.data.records import eval_file, files_report, prompts_of, read_records, require_prompts, split_held_out


def ultrafeedback(
    path: str,
    split: str,
    eval_path: str | None,
    eval_split: str,
    prompts_per_iteration: int,
    eval_prompts: int,
    eval_seed: int,
    seed: int,
) -> Source:
    """Chat-format prompts with no gold judge: evaluate with larpo-generate and AlpacaEval."""
    eval_path = eval_file(path, eval_path)
    files = [read_records(path, split)] + ([read_records(eval_path, eval_split)] if eval_path else [])
    prompts = [prompts_of(f) for f in files]
    require_prompts(files[0], prompts[0], "data.path")
    train, held_out = split_held_out(
        prompts[0], prompts_per_iteration, eval_prompts, seed, eval_seed, prompts[1] if eval_path else None
    )
    return Source(train, held_out, report=files_report(files))
