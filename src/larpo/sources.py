"""Data sources of real data (`src/larpo/conf/data/`); the embedded world's is in worlds/arithmetic.

- gsm8k:         question/answer records; the reference answer feeds the verifier and the negatives;
- ultrafeedback: prompts in the chat-message format; no gold judge, so no built-in evaluation:
                 export answers with `larpo-generate` and judge them with AlpacaEval;
- lists:         ranked lists in the pool format (or UltraFeedback records with rated
                 completions, converted), trained on offline.

A file is read locally (JSONL, or a JSON list); anything else is a hub id loaded through the
`datasets` package. Each line is decoded and validated on its own: a bad line is skipped and
reported with its line number and reason (in the log and in summary.json), never coerced. A file
with no valid line stops the run.
"""

from __future__ import annotations

import logging
import math
import random
import re
from pathlib import Path

from larpo import strict_json
from larpo.candidates import CandidateList, chat_text, list_from_row
from larpo.config import ConfigError
from larpo.source import Source
from larpo.worlds.arithmetic import source as arithmetic_world

log = logging.getLogger("larpo")


class Records:
    """The good records of a file, and the lines skipped with their reasons."""

    def __init__(self, path: str):
        self.path, self.rows, self.skipped = str(path), [], []

    def skip(self, line: int, reason: str) -> None:
        log.warning("%s:%d: skipped (%s)", self.path, line, reason)
        self.skipped.append({"file": self.path, "line": line, "reason": reason})

    def report(self) -> dict:
        return {"lines_read": len(self.rows) + len(self.skipped), "skipped_lines": self.skipped}


def read_records(path: str, split: str = "train", name: str | None = None) -> Records:
    """(line number, record) pairs of a JSONL / JSON file, or of a hub dataset split (needs
    `datasets`); bad lines are skipped with their reasons."""
    out = Records(path)
    local = Path(path).expanduser()
    if local.is_file():
        if local.suffix == ".json":
            try:
                rows = strict_json.loads(local.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as err:
                out.skip(1, f"not a JSON file ({err})")
                return out
            for n, row in enumerate(rows if isinstance(rows, list) else [rows], start=1):
                out.rows.append((n, row)) if isinstance(row, dict) else out.skip(n, "not a JSON object")
            return out
        for n, row, reason in strict_json.read_lines(local):
            out.rows.append((n, row)) if row is not None else out.skip(n, reason)
        return out
    import datasets  # a hub id; the config check has made sure the package is there

    out.rows = list(enumerate((dict(r) for r in datasets.load_dataset(path, name, split=split)), start=1))
    return out


def _nonempty(records: Records, what: str, key: str) -> None:
    if not records.rows:
        reasons = "; ".join(f"line {s['line']}: {s['reason']}" for s in records.skipped[:3])
        raise ConfigError(key, records.path, f"has no valid {what} ({reasons or 'empty'})", "check the file")


def chat_prompt(row: dict) -> str:
    """The prompt of a chat-format record: `prompt` text or messages, or its `messages` up to the
    last user turn (one turn becomes its text, several a JSON list of {role, content})."""
    turns = row.get("messages")
    if turns is None:
        prompt = row.get("prompt", row.get("instruction"))
        return chat_text(prompt)
    if not isinstance(turns, list):
        raise ValueError("messages must be a list of {role, content}")
    users = [i for i, t in enumerate(turns) if isinstance(t, dict) and t.get("role") == "user"]
    if not users:
        raise ValueError("messages has no user turn")
    return chat_text(turns[: users[-1] + 1])


def _prompts(records: Records) -> list[str]:
    out = []
    for n, row in records.rows:
        try:
            out.append(chat_prompt(row))
        except ValueError as err:
            records.skip(n, str(err))
    return out


def ultrafeedback_list(row: dict) -> CandidateList:
    """An UltraFeedback record (an `instruction` and rated `completions`) as a ranked list: the
    reward of a completion is its `overall_score`, or the mean of its aspect ratings."""
    completions = row.get("completions")
    if not isinstance(completions, list) or not completions:
        raise ValueError("completions must be a non-empty list")
    responses, rewards = [], []
    for c in completions:
        if not isinstance(c, dict):
            raise ValueError("each completion must be an object")
        score = c.get("overall_score")
        if score is None:
            ratings = [a.get("Rating") for a in (c.get("annotations") or {}).values() if isinstance(a, dict)]
            ratings = [float(r) for r in ratings if isinstance(r, str) and re.fullmatch(r"\d+(\.\d+)?", r)]
            score = sum(ratings) / len(ratings) if ratings else None
        responses.append(c.get("response"))
        rewards.append(score)
    return list_from_row({"prompt": chat_prompt(row), "responses": responses, "rewards": rewards})


def read_lists(path: str) -> tuple[list[CandidateList], Records]:
    """Pool-format lists, or UltraFeedback records (recognised by their `completions`)."""
    records = read_records(path)
    lists = []
    for n, row in records.rows:
        try:
            lst = ultrafeedback_list(row) if "completions" in row else list_from_row(row)
            lst.sources = ["given"] * len(lst) if "completions" in row else lst.sources
            lst.temperatures = [math.nan] * len(lst) if "completions" in row else lst.temperatures
            lists.append(lst)
        except ValueError as err:
            records.skip(n, str(err))
    skipped = {s["line"] for s in records.skipped}
    records.rows = [r for r in records.rows if r[0] not in skipped]
    return lists, records


# --- GSM8K answers -------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def final_number(text: str) -> float | None:
    """The final numeric answer of a solution: the number after the last `####`, or else the last
    number in the text. Thousands separators are ignored; None when there is no number."""
    tail = text.rsplit("####", 1)[1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    if not numbers:
        return None
    try:
        return float(numbers[0 if "####" in text else -1].replace(",", ""))
    except ValueError:
        return None


def answers_match(response: str, reference: str) -> bool:
    """Numeric comparison of final answers, never a substring test: "12" does not match "120"."""
    a, b = final_number(response), final_number(reference)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=0.0, abs_tol=1e-6)


# --- the sources ---------------------------------------------------------------------------------


def _sample(items: list[str], n: int | None, seed: int) -> list[str]:
    items = list(dict.fromkeys(items))  # unique, in file order
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def _split(prompts, n_train, n_eval, seed, eval_seed, eval_prompts_given):
    """Training and held-out prompts: the eval file's when given, else a seeded hold-out."""
    pool = eval_prompts_given if eval_prompts_given is not None else prompts
    held_out = _sample(pool, n_eval, eval_seed) if n_eval else []
    excluded = set(held_out)
    train = [p for p in dict.fromkeys(prompts) if p not in excluded]
    return _sample(train, n_train, seed), held_out


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
    _nonempty_questions(files[0], questions[0], "data.path")
    train, held_out = _split(
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
        report=_report(files),
    )


def _nonempty_questions(records: Records, questions: list[str], key: str) -> None:
    if not questions:
        records.rows = []
        _nonempty(records, "record", key)


def _report(files: list[Records]) -> dict:
    return {
        "lines_read": sum(f.report()["lines_read"] for f in files),
        "skipped_lines": [s for f in files for s in f.skipped],
    }


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
    files = [read_records(path, split)] + ([read_records(eval_path, eval_split)] if eval_path else [])
    prompts = [_prompts(f) for f in files]
    _nonempty_questions(files[0], prompts[0], "data.path")
    train, held_out = _split(
        prompts[0], prompts_per_iteration, eval_prompts, seed, eval_seed, prompts[1] if eval_path else None
    )
    return Source(train, held_out, report=_report(files))


def lists(
    path: str, evaluate: bool, task, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int
) -> Source:
    """Given ranked lists (offline training). With `evaluate`, the arithmetic world's held-out
    prompts and gold judge evaluate the policy (the keys it shares with data=arithmetic)."""
    given, records = read_lists(path)
    if not given:
        _nonempty(records, "list", "data.path")
    world = arithmetic_world.arithmetic(task, 0, eval_prompts, eval_seed, seed) if evaluate else None
    return Source(
        sorted({lst.prompt for lst in given}),
        world.eval if world else [],
        reference=world.reference if world else None,
        judge=world.judge if world else None,
        given=given,
        report={"lists_read": len(given), **_report([records])},
        task=task,
    )
