"""`data=gsm8k`: grade-school math question/answer records (Cobbe et al. 2021). The reference
answer feeds the verifier, the hard negatives and the held-out evaluation."""

from __future__ import annotations

from larpo.data.answers import answers_match
from larpo.data.contract import Source
from larpo.data.records import eval_file, files_report, read_records, require_prompts, split_held_out


def gsm8k(
    path: str,
    subset: str | None,
    split: str,
    eval_path: str | None,
    eval_split: str,
    question_key: str,
    answer_key: str,
    prompts_per_iteration: int,
    eval_prompts: int,
    eval_seed: int,
    seed: int,
) -> Source:
    """GSM8K-style question/answer records; the answer is the reference (verifier, negatives, evaluation)."""
    eval_path = eval_file(path, eval_path)
    files = [read_records(path, split, subset)] + ([read_records(eval_path, eval_split, subset)] if eval_path else [])
    answers, questions = {}, [[] for _ in files]
    for part, records in zip(questions, files, strict=True):
        for n, row in records.rows:
            q, a = row.get(question_key), row.get(answer_key)
            if not isinstance(q, str) or not q.strip() or not isinstance(a, str) or not a.strip():
                records.skip(n, f"needs non-empty strings {question_key!r} and {answer_key!r}")
                continue
            answers[q] = a
            part.append(q)
    require_prompts(files[0], questions[0], "data.path")
    train, held_out = split_held_out(
        questions[0],
        prompts_per_iteration,
        eval_prompts,
        seed,
        eval_seed,
        questions[1] if eval_path else None,
    )
    return Source(
        train,
        held_out,
        reference=answers.get,
        judge=lambda p, r: float(answers_match(r, answers[p])),
        report=files_report(files),
    )
