"""Candidate lists: cleaning, memory merge, de-duplication, ranking, and the pool file.

Pool file (contract, docs/formats.md): `<run_dir>/pool/iteration_<s>.jsonl`, one line per prompt:
    {"prompt", "responses", "rewards", "iteration", "temperatures"}
plus `"sampled_in"` (the iteration each response was sampled in), `"sources"` (policy, reference,
other_prompt or unrelated), `"ref_logps"` (reference log-probs of the kept ones), `"kept"` (indices of the
candidates that went to training), `"reference"` where the task has a gold answer and `"truncated"`
(booleans: cut at the generator's max_new_tokens without EOS) where any candidate was.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from larpo import strict_json

log = logging.getLogger(__name__)


@dataclass
class CandidateList:
    prompt: str
    responses: list[str]
    rewards: list[float]
    temperatures: list[float]
    sampled_in: list[int]
    sources: list[str]  # policy | reference | other_prompt | unrelated
    iteration: int = 0
    reference: str | None = None
    kept: list[int] = field(default_factory=list)  # indices that went to training (none if dropped)
    ref_logps: list[float] | None = None  # reference log-probs of the kept candidates
    truncated: list[bool] = field(default_factory=list)  # cut at max_new_tokens without EOS (empty: none)

    def __len__(self) -> int:
        return len(self.responses)

    def subset(self, idx: list[int]) -> CandidateList:
        return CandidateList(
            self.prompt,
            [self.responses[i] for i in idx],
            [self.rewards[i] for i in idx],
            [self.temperatures[i] for i in idx],
            [self.sampled_in[i] for i in idx],
            [self.sources[i] for i in idx],
            self.iteration,
            self.reference,
            truncated=[self.truncated[i] for i in idx] if any(self.truncated) else [],
        )

    def ended(self, i: int) -> bool:
        """Whether candidate i ended on its own (EOS), rather than at the token cap."""
        return not (self.truncated and self.truncated[i])


def clean(lst: CandidateList, counts: Counter) -> CandidateList:
    """Drop empty responses and non-finite rewards, counting each reason."""
    keep = []
    for i, (r, w) in enumerate(zip(lst.responses, lst.rewards, strict=True)):
        if not r.strip():
            counts["empty_response"] += 1
        elif w is None or not math.isfinite(w):
            counts["nonfinite_reward"] += 1
        else:
            keep.append(i)
    return lst.subset(keep)


def dedupe(lst: CandidateList) -> CandidateList:
    """Keep the first occurrence of each response text (callers put the newest samples first)."""
    seen, keep = set(), []
    for i, r in enumerate(lst.responses):
        if r not in seen:
            seen.add(r)
            keep.append(i)
    return lst.subset(keep)


def rank(lst: CandidateList) -> CandidateList:
    """Sort best first by reward; equal rewards keep their order (stable), which is not a preference."""
    order = sorted(range(len(lst)), key=lambda i: -lst.rewards[i])
    return lst.subset(order)


def all_tied(lst: CandidateList) -> bool:
    return len(set(lst.rewards)) <= 1


def merge_memory(history: list[dict[str, CandidateList]], memory: str, dedupe: bool = True) -> dict[str, CandidateList]:
    """This iteration's lists merged with earlier iterations' for the same prompts.

    history[-1] is the current iteration. memory: `current` uses it alone, `previous` adds the
    iteration before, `all` adds every earlier one. Newest responses come first, so de-duplication
    keeps the newest copy; `dedupe=False` keeps every copy (a GRPO group counts each sample).
    """
    spans = {"current": 1, "previous": 2, "all": len(history)}
    if memory not in spans:
        raise ValueError(f"candidate_list.memory={memory!r}: use current, previous or all")
    window = history[-spans[memory] :][::-1]
    return {prompt: concat([it[prompt] for it in window if prompt in it], dedupe) for prompt in window[0]}


def concat(parts: list[CandidateList], unique: bool = True) -> CandidateList:
    """One list of the same prompt's candidates from several lists, in order; de-duplicated
    unless `unique=False`."""
    first = parts[0]
    joined = CandidateList(
        first.prompt,
        [r for p in parts for r in p.responses],
        [w for p in parts for w in p.rewards],
        [t for p in parts for t in p.temperatures],
        [s for p in parts for s in p.sampled_in],
        [s for p in parts for s in p.sources],
        first.iteration,
        first.reference,
        truncated=[not p.ended(i) for p in parts for i in range(len(p))] if any(p.truncated for p in parts) else [],
    )
    return dedupe(joined) if unique else joined


def write_pool(path: Path, lists: list[CandidateList]) -> None:
    """Write one strict-JSON line per prompt, atomically: a temp file, then a rename. Undefined
    values (the temperature of a foreign negative) are null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for lst in lists:
            row = asdict(lst)
            for key in ("reference", "ref_logps", "truncated"):
                if not row[key]:  # absent: none (a pool without cut answers reads as before)
                    del row[key]
            f.write(strict_json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def chat_text(prompt) -> str:
    """A prompt as larpo carries it: text, or a list of chat messages as their JSON text."""
    if isinstance(prompt, str) and prompt:
        return prompt
    if (
        isinstance(prompt, list)
        and prompt
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
        )
    ):
        turns = [{"role": m["role"], "content": m["content"]} for m in prompt]
        return turns[0]["content"] if len(turns) == 1 and turns[0]["role"] == "user" else json.dumps(turns)
    raise ValueError("prompt must be a non-empty string or a list of chat messages {role, content}")


def _numbers(row: dict, key: str, k: int, default: float | None) -> list:
    values = row.get(key)
    if values is None:
        return [default] * k
    if not isinstance(values, list) or len(values) != k:
        raise ValueError(f"{key} must be a list of {k} numbers, one per response")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError(f"{key} must hold numbers, not {type(v).__name__}")
    return values


def list_from_row(row: dict) -> CandidateList:
    """A pool-format line as a candidate list; ValueError says what is wrong with it."""
    if "prompt" not in row or "responses" not in row or "rewards" not in row:
        missing = [k for k in ("prompt", "responses", "rewards") if k not in row]
        raise ValueError(f"missing {', '.join(missing)}")
    prompt = chat_text(row["prompt"])
    responses = row["responses"]
    if not isinstance(responses, list) or not responses:
        raise ValueError("responses must be a non-empty list of strings")
    for r in responses:
        if not isinstance(r, str) or not r.strip():
            raise ValueError(f"responses must be non-empty strings, got {json.dumps(r)}")
    k = len(responses)
    rewards = row["rewards"]
    if not isinstance(rewards, list) or len(rewards) != k:
        raise ValueError(f"rewards must be a list of {k} numbers, one per response")
    for w in rewards:
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
            raise ValueError(f"rewards must be finite numbers, got {json.dumps(w)}")
    iteration = row.get("iteration", 0)
    if isinstance(iteration, bool) or not isinstance(iteration, int):
        raise ValueError("iteration must be an integer")
    sources = row.get("sources") or ["policy"] * k
    if len(sources) != k or not all(isinstance(s, str) for s in sources):
        raise ValueError(f"sources must be a list of {k} strings")
    temps = [math.nan if t is None else float(t) for t in _numbers(row, "temperatures", k, None)]
    ref_logps = row.get("ref_logps")
    kept = row.get("kept", [])
    if not isinstance(kept, list) or not all(isinstance(i, int) and 0 <= i < k for i in kept):
        raise ValueError("kept must be a list of response indices")
    if ref_logps is not None and (not isinstance(ref_logps, list) or len(ref_logps) != len(kept)):
        raise ValueError("ref_logps must hold one number per kept response")
    truncated = row.get("truncated") or []
    if truncated and (
        not isinstance(truncated, list) or len(truncated) != k or not all(isinstance(t, bool) for t in truncated)
    ):
        raise ValueError(f"truncated must be a list of {k} booleans, one per response")
    return CandidateList(
        prompt=prompt,
        responses=list(responses),
        rewards=[float(w) for w in rewards],
        temperatures=temps,
        sampled_in=[int(s) for s in _numbers(row, "sampled_in", k, iteration)],
        sources=list(sources),
        iteration=iteration,
        reference=row.get("reference") if isinstance(row.get("reference"), str) else None,
        kept=list(kept),
        ref_logps=[float(x) for x in ref_logps] if ref_logps is not None else None,
        truncated=list(truncated) if any(truncated) else [],
    )


def read_pool(path: Path) -> tuple[list[CandidateList], list[dict]]:
    """Parse a pool file line by line. A bad line is skipped and reported as {line, reason};
    blank lines are not errors."""
    lists, skipped = [], []
    for n, row, reason in strict_json.read_lines(Path(path)):
        if row is not None:
            try:
                lists.append(list_from_row(row))
                continue
            except ValueError as err:
                reason = str(err)
        log.warning("%s:%d: skipped line (%s)", path, n, reason)
        skipped.append({"line": n, "reason": reason})
    return lists, skipped


class PoolStore:
    """A run's pool files, `<run_dir>/pool/iteration_<s>.jsonl`; only rank zero writes."""

    def __init__(self, run_dir: Path, rank: int = 0):
        self.run_dir, self.rank = Path(run_dir), rank

    def path(self, iteration: int) -> Path:
        return self.run_dir / "pool" / f"iteration_{iteration}.jsonl"

    def write(self, iteration: int, lists: list[CandidateList]) -> None:
        if self.rank == 0:
            write_pool(self.path(iteration), lists)

    def write_stats(self, iteration: int, stats: dict) -> None:
        """The iteration's list statistics beside its pool file: `iteration_<s>.stats.json`."""
        if self.rank == 0:
            path = self.path(iteration).with_suffix(".stats.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(strict_json.dumps(stats, indent=2) + "\n")

    def read(self, iteration: int) -> list[CandidateList]:
        return read_pool(self.path(iteration))[0]

    def iterations(self) -> list[int]:
        """The iterations whose pool file exists, in order."""
        return sorted(int(p.stem.split("_")[1]) for p in (self.run_dir / "pool").glob("iteration_*.jsonl"))
