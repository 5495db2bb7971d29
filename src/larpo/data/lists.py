"""`data=lists`: given ranked lists in the pool format (docs/formats.md), or UltraFeedback records
with rated completions (converted), trained on offline: no generation, no reward-model call."""

from __future__ import annotations

import math
import re

from larpo.candidates import CandidateList, list_from_row
from larpo.data.contract import DataSource, Source
from larpo.data.records import Records, chat_prompt, files_report, read_records, require_rows


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


def lists(
    path: str,
    evaluate: bool,
    task: object | None,
    world: DataSource | None,
    prompts_per_iteration: int,
    eval_prompts: int,
    eval_seed: int,
    seed: int,
) -> Source:
    """Given ranked lists (offline training). `world`: an embedded world's data source, whose SFT
    stage builds the initial policy (model=tiny) and, with `evaluate`, whose held-out prompts and
    gold judge evaluate it (null: no world)."""
    given, records = read_lists(path)
    if not given:
        require_rows(records, "list", "data.path")
    home = world(prompts_per_iteration=0, eval_prompts=eval_prompts, eval_seed=eval_seed, seed=seed) if world else None
    judged = home if evaluate and home is not None else None
    return Source(
        sorted({lst.prompt for lst in given}),
        judged.eval if judged else [],
        reference=judged.reference if judged else None,
        judge=judged.judge if judged else None,
        given=given,
        report={"lists_read": len(given), **files_report([records])},
        task=task,
        sft=home.sft if home else None,
    )
