"""Where prompts, gold answers and the evaluation judge come from (`conf/data/`).

- arithmetic:    the embedded world, generated from a seed (the default);
- gsm8k:         question/answer records; the reference answer feeds the verifier and the negatives;
- ultrafeedback: prompts in the chat-message format; no gold judge, so no built-in evaluation:
                 export answers with `larpo-generate` and judge them with AlpacaEval;
- lists:         ranked lists in the pool format (or UltraFeedback records with rated
                 completions, converted), trained on offline.

A file is read locally (JSONL, or a JSON list); anything else is a hub id loaded through the
`datasets` package. A malformed line is skipped and its line number reported, never fatal.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from larpo.candidates import CandidateList, read_pool
from larpo.worlds import arithmetic

log = logging.getLogger("larpo")

# the unrelated-response negatives of real data: replies to prompts of another dataset (B.4 (1))
UNRELATED = [
    "Here is a haiku about autumn leaves: red and gold they fall, the wind carries them away.",
    "The capital of Australia is Canberra, not Sydney.",
    "To make a cup of tea, steep the leaves in hot water for three to five minutes.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "I would recommend reading the documentation of the library before upgrading it.",
    "A good stretching routine warms up the muscles before a run.",
]


@dataclass
class Source:
    """Training prompts, held-out prompts, and what is known about their answers."""

    train: list[str]
    eval: list[str]
    reference: Callable[[str], str | None] | None = None  # the gold answer text, where there is one
    judge: Callable[[str, str], float] | None = None  # gold judge for evaluation (None: none built in)
    unrelated: Callable[[random.Random], str] = arithmetic.unrelated_response
    given: list[CandidateList] | None = None  # data=lists: the lists to train on
    report: dict = field(default_factory=dict)  # lines read, malformed line numbers


# --- reading records --------------------------------------------------------------------------


def read_records(path: str, split: str = "train", name: str | None = None) -> tuple[list[dict], list[int]]:
    """Records of a JSONL / JSON file, or of a hub dataset split (needs `datasets`); with the
    line numbers of malformed lines."""
    local = Path(path).expanduser()
    if local.is_file():
        text = local.read_text()
        if local.suffix == ".json" and text.lstrip().startswith("["):
            return [r for r in json.loads(text) if isinstance(r, dict)], []
        records, bad = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                records.append(row)
            except ValueError as err:
                log.warning("%s:%d: skipped malformed line (%s)", local, n, err)
                bad.append(n)
        return records, bad
    try:
        import datasets
    except ImportError:
        raise ImportError(
            f"data.path={path} is not a local file, and loading it from the hub needs the datasets "
            'package: pip install datasets (or pip install -e ".[hub]")'
        ) from None
    return [dict(r) for r in datasets.load_dataset(path, name, split=split)], []


def chat_prompt(row: dict) -> str | None:
    """The prompt of a chat-format record: `prompt` text, or its `messages` up to the last user
    turn (one turn becomes its text, several a JSON list of {role, content})."""
    turns = row.get("messages") or (row["prompt"] if isinstance(row.get("prompt"), list) else None)
    if turns is None:
        prompt = row.get("prompt") or row.get("instruction")
        return str(prompt) if prompt else None
    users = [i for i, t in enumerate(turns) if t.get("role") == "user"]
    if not users:
        return None
    turns = [{"role": t["role"], "content": t["content"]} for t in turns[: users[-1] + 1]]
    return turns[0]["content"] if len(turns) == 1 else json.dumps(turns)


def ultrafeedback_lists(records: list[dict]) -> list[CandidateList]:
    """UltraFeedback records (an `instruction` and rated `completions`) as ranked lists: the
    reward of a completion is its `overall_score`, or the mean of its aspect ratings."""
    lists = []
    for row in records:
        prompt = chat_prompt(row)
        responses, rewards = [], []
        for c in row.get("completions") or []:
            score = c.get("overall_score")
            if score is None:
                ratings = [
                    float(a["Rating"])
                    for a in (c.get("annotations") or {}).values()
                    if isinstance(a, dict) and str(a.get("Rating", "")).replace(".", "", 1).isdigit()
                ]
                score = sum(ratings) / len(ratings) if ratings else math.nan
            responses.append(str(c.get("response", "")))
            rewards.append(float(score))
        if prompt and responses:
            k = len(responses)
            lists.append(CandidateList(prompt, responses, rewards, [math.nan] * k, [0] * k, ["given"] * k))
    return lists


def read_lists(path: str) -> tuple[list[CandidateList], list[int]]:
    """Pool-format lists, or UltraFeedback records (detected by their `completions`)."""
    with open(Path(path).expanduser()) as f:
        first = next((line for line in f if line.strip()), "")
    try:
        is_ultrafeedback = "completions" in json.loads(first)
    except ValueError:
        is_ultrafeedback = False
    if is_ultrafeedback:
        records, bad = read_records(path)
        return ultrafeedback_lists(records), bad
    return read_pool(Path(path).expanduser())


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


def _split(records: list[str], cfg: DictConfig, seed: int, eval_records: list[str] | None):
    """Training and held-out prompts: the eval file when given, else a seeded hold-out."""
    n_eval = cfg.eval_prompts or 0
    if eval_records is not None:
        held_out = _sample(eval_records, n_eval, cfg.eval_seed) if n_eval else []
    else:
        held_out = _sample(records, n_eval, cfg.eval_seed) if n_eval else []
    excluded = set(held_out)
    train = [p for p in dict.fromkeys(records) if p not in excluded]
    return _sample(train, cfg.prompts_per_iteration, seed), held_out


def load_source(cfg: DictConfig, n_prompts: int) -> Source:
    """The source named by `cfg.data.name` (`n_prompts` training prompts where it samples them)."""
    data, seed = cfg.data, cfg.seed
    if data.name == "arithmetic":
        task = arithmetic.ArithmeticTask(**data.task)
        held_out = task.prompts(data.eval_prompts, seed=data.eval_seed) if data.eval_prompts else []
        return Source(
            task.prompts(n_prompts, seed=seed + 101, exclude=set(held_out)),
            held_out,
            reference=lambda p: str(arithmetic.true_answer(p)),
            judge=arithmetic.judge,
        )
    if data.name == "lists":
        given, bad = read_lists(data.path)
        source = load_source(_with(cfg, data.evaluate_on), 0) if data.get("evaluate_on") else None
        return Source(
            sorted({lst.prompt for lst in given}),
            source.eval if source else [],
            reference=source.reference if source else None,
            judge=source.judge if source else None,
            given=given,
            report={"lists_read": len(given), "malformed_lines": bad},
        )
    if data.name == "gsm8k":
        records, bad = read_records(data.path, data.split, data.get("subset"))
        eval_records, bad_eval = (
            read_records(data.eval_path, data.eval_split, data.get("subset"))
            if data.eval_path
            else (None, [])
        )
        answers = {}
        for row in records + (eval_records or []):
            if row.get(data.question_key) and row.get(data.answer_key):
                answers[str(row[data.question_key])] = str(row[data.answer_key])
        questions = [str(r[data.question_key]) for r in records if str(r.get(data.question_key)) in answers]
        eval_qs = [
            str(r[data.question_key]) for r in eval_records or [] if str(r.get(data.question_key)) in answers
        ]
        cfg_n = _with_prompts(data, n_prompts)
        train, held_out = _split(questions, cfg_n, seed, eval_qs if eval_records is not None else None)
        return Source(
            train,
            held_out,
            reference=answers.get,
            judge=lambda p, r: float(answers_match(r, answers[p])),
            unrelated=lambda rng: rng.choice(UNRELATED),
            report={"records": len(records), "malformed_lines": bad + bad_eval},
        )
    if data.name == "ultrafeedback":
        records, bad = read_records(data.path, data.split)
        prompts = [p for p in map(chat_prompt, records) if p]
        eval_records = None
        if data.eval_path:
            rows, more_bad = read_records(data.eval_path, data.eval_split)
            eval_records, bad = [p for p in map(chat_prompt, rows) if p], bad + more_bad
        train, held_out = _split(prompts, _with_prompts(data, n_prompts), seed, eval_records)
        return Source(
            train,
            held_out,
            unrelated=lambda rng: rng.choice(UNRELATED),
            report={"records": len(records), "malformed_lines": bad},
        )
    raise ValueError(f"unknown data {data.name!r}: use arithmetic, gsm8k, ultrafeedback or lists")


def _with_prompts(data: DictConfig, n: int) -> DictConfig:
    out = data.copy()
    out.prompts_per_iteration = n
    return out


def _with(cfg: DictConfig, name: str) -> DictConfig:
    """`cfg` with data.name replaced (data=lists borrows the evaluation of another source)."""
    out = cfg.copy()
    out.data.name = name
    return out
