"""Candidate lists: cleaning, memory merge, de-duplication, ranking, and the pool file.

Pool file (contract): `<run_dir>/pool/iteration_<s>.jsonl`, one line per prompt:
    {"prompt", "responses", "rewards", "iteration", "temperatures"}
plus `"sampled_in"` (the iteration each response was sampled in), `"sources"` (policy, reference,
other_prompt or unrelated), `"ref_logps"` (reference log-probs of the kept ones), `"kept"` (indices of the
candidates that went to training) and `"reference"` where the task has a gold answer.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
        )


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


def merge_memory(history: list[dict[str, CandidateList]], memory: str) -> dict[str, CandidateList]:
    """This iteration's lists merged with earlier iterations' for the same prompts.

    history[-1] is the current iteration. memory: `current` uses it alone, `previous` adds the
    iteration before, `all` adds every earlier one. Newest responses come first, so de-duplication
    keeps the newest copy.
    """
    spans = {"current": 1, "previous": 2, "all": len(history)}
    if memory not in spans:
        raise ValueError(f"candidate_list.memory={memory!r}: use current, previous or all")
    window = history[-spans[memory] :][::-1]
    return {prompt: concat([it[prompt] for it in window if prompt in it]) for prompt in window[0]}


def concat(parts: list[CandidateList]) -> CandidateList:
    """One de-duplicated list of the same prompt's candidates from several lists, in order."""
    first = parts[0]
    return dedupe(
        CandidateList(
            first.prompt,
            [r for p in parts for r in p.responses],
            [w for p in parts for w in p.rewards],
            [t for p in parts for t in p.temperatures],
            [s for p in parts for s in p.sampled_in],
            [s for p in parts for s in p.sources],
            first.iteration,
            first.reference,
        )
    )


def write_pool(path: Path, lists: list[CandidateList]) -> None:
    """Write one JSON line per prompt, atomically: a temp file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for lst in lists:
            row = asdict(lst)
            for key in ("reference", "ref_logps"):
                if row[key] is None:
                    del row[key]
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_pool(path: Path) -> tuple[list[CandidateList], list[int]]:
    """Parse a pool file. Malformed lines are skipped and their line numbers returned; blank lines
    are not errors."""
    lists, bad = [], []
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                responses = [str(r) for r in row["responses"]]
                rewards = [float("nan") if w is None else float(w) for w in row["rewards"]]
                if len(rewards) != len(responses):
                    raise ValueError("responses and rewards differ in length")
                k = len(responses)
                lists.append(
                    CandidateList(
                        prompt=str(row["prompt"]),
                        responses=responses,
                        rewards=rewards,
                        temperatures=[float(t) for t in row.get("temperatures") or [float("nan")] * k],
                        sampled_in=[int(s) for s in row.get("sampled_in") or [row.get("iteration", 0)] * k],
                        sources=[str(s) for s in row.get("sources") or ["policy"] * k],
                        iteration=int(row.get("iteration", 0)),
                        reference=row.get("reference"),
                        kept=[int(i) for i in row.get("kept", [])],
                        ref_logps=row.get("ref_logps"),
                    )
                )
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s:%d: skipped malformed line (%s)", path, n, err)
                bad.append(n)
    return lists, bad
