"""What an iteration tells its user about its lists, in one place: why lists were dropped and what
helps, samples cut at the token limit, and the one-line summary of what it trains on."""

from __future__ import annotations

import logging
import math

log = logging.getLogger("larpo")

# what to do about the reason that dropped the most lists or candidates
REMEDY = {
    "all_tied": "the reward model gave every candidate of a list the same reward; raise the temperature or "
    "candidate_list.size, use a reward model that separates the samples, or, where the data has reference "
    "answers (GSM8K-style), put the reference on top of each list with negatives=hardest",
    "too_few_candidates": "fewer than 2 distinct non-empty candidates per list; raise candidate_list.size or the "
    "temperature",
    "truncated": "samples cut at generator.max_new_tokens were dropped (candidate_list.drop_truncated); raise it",
    "empty_response": "the samples were empty; check the prompt format (chat template) and generator.max_new_tokens",
    "nonfinite_reward": "the reward model returned NaN or infinite rewards",
}


def why_dropped(n_lists: int, dropped: dict) -> str:
    """The real cause of an iteration with no list to train on, in one line."""
    if n_lists == 0:
        return "there are no training prompts (check data.path, data.prompts_per_iteration and data.eval_prompts)"
    reason = max(dropped, key=dropped.get) if dropped else None
    return f"all {n_lists} lists were dropped ({dict(dropped)}): {REMEDY.get(reason, 'see the counts')}"


def mostly_dropped(dropped: dict, kept: int) -> str | None:
    """When more lists were dropped as tied or too small than kept (most sampling wasted), why and
    what helps."""
    lost = {k: v for k, v in dropped.items() if k in ("all_tied", "too_few_candidates")}
    if not lost or sum(lost.values()) <= kept:
        return None
    reason = max(lost, key=lost.get)
    return f"{sum(lost.values())} lists dropped against {kept} kept ({dict(lost)}): {REMEDY[reason]}"


def truncation(share: float, max_new_tokens) -> str | None:
    """When more than a tenth of the samples hit the token limit before ending: what it means and
    what helps."""
    if share <= 0.1:
        return None
    return (
        f"{100 * share:.0f}% of the samples hit generator.max_new_tokens={max_new_tokens} before ending; "
        "they are ranked as they are (trained without EOS): raise generator.max_new_tokens, or drop them "
        "(candidate_list.drop_truncated=true) or penalise them (candidate_list.missing_eos_penalty)"
    )


def report(label: str, n_items: int, dropped: dict, lists: dict, max_new_tokens) -> None:
    """Log what an iteration trains on, and warn where most of its sampling was wasted."""
    if "truncated" in lists:
        cut = truncation(lists["truncated"], max_new_tokens)
        if cut:
            log.warning("%s %s", label, cut)
    log.info(
        "%s %d lists to train on, dropped %s; samples: mean reward %.3f, %.1f tokens",
        label,
        n_items,
        dropped or "none",
        lists.get("sample_reward", math.nan),
        lists.get("sample_tokens", math.nan),
    )
    wasted = mostly_dropped(dropped, n_items)
    if wasted:
        log.warning("%s %s", label, wasted)
