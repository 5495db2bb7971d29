"""Strict reading of data files: each line decoded and validated on its own; a bad line is
skipped and reported with its line number and reason (in the log and in summary.json), never
coerced. A local JSONL or JSON file, or a hub id loaded through `datasets`. Also the seeded
split of prompts into training and held-out ones."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from larpo import strict_json
from larpo.candidates import chat_text
from larpo.fields import ConfigError

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


def require_rows(records: Records, what: str, key: str) -> None:
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


def prompts_of(records: Records) -> list[str]:
    out = []
    for n, row in records.rows:
        try:
            out.append(chat_prompt(row))
        except ValueError as err:
            records.skip(n, str(err))
    return out


def sample_unique(items: list[str], n: int | None, seed: int) -> list[str]:
    items = list(dict.fromkeys(items))  # unique, in file order
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def eval_file(path: str, eval_path: str | None) -> str | None:
    """The held-out file, or None to hold prompts out of `path`. A local file has no splits, so
    `eval_path` naming the training file itself (e.g. gsm8k's `eval_path: ${.path}`, meant for a
    hub id's test split) would hold out the very prompts trained on: it means "hold out of it"."""
    if (
        eval_path
        and Path(eval_path).expanduser().is_file()
        and Path(eval_path).expanduser().resolve() == (Path(path).expanduser().resolve())
    ):
        log.info("data.eval_path is data.path, a local file without splits: held-out prompts are drawn from it")
        return None
    return eval_path


def split_held_out(prompts, n_train, n_eval, seed, eval_seed, eval_prompts_given):
    """Training and held-out prompts: the eval file's when given, else a seeded hold-out that must
    leave prompts to train on."""
    pool = eval_prompts_given if eval_prompts_given is not None else prompts
    held_out = sample_unique(pool, n_eval, eval_seed) if n_eval else []
    excluded = set(held_out)
    train = [p for p in dict.fromkeys(prompts) if p not in excluded]
    if eval_prompts_given is None and prompts and not train:
        raise ConfigError(
            "data.eval_prompts",
            n_eval,
            f"holds out all {len(set(prompts))} prompts of data.path, leaving none to train on",
            f"use data.eval_prompts<{len(set(prompts))} (e.g. a fifth of them), or give data.eval_path",
        )
    return sample_unique(train, n_train, seed), held_out


def require_prompts(records: Records, questions: list[str], key: str) -> None:
    if not questions:
        records.rows = []
        require_rows(records, "record", key)


def files_report(files: list[Records]) -> dict:
    return {
        "lines_read": sum(f.report()["lines_read"] for f in files),
        "skipped_lines": [s for f in files for s in f.skipped],
    }
