"""Pieces every objective shares: preference scores and pairs (the tie rule), the implicit reward,
the best and worst candidate, the top candidate's NLL, the mean over prompts that carry a term.

A pair of candidates is a preference only when the first one's reward is *strictly* higher: tied
candidates give no pairwise term. Without rewards, the list order is a strict ranking.
The implicit reward is gamma = beta * (log pi_theta - log pi_ref) (the paper, Section 3).
"""

from __future__ import annotations

import torch
from torch import Tensor


def scores(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """Preference scores: the rewards, or minus the position when the list order is the ranking."""
    if rewards is not None:
        return rewards.to(torch.float64)
    return -torch.arange(mask.shape[1], dtype=torch.float64, device=mask.device).expand(mask.shape)


def prefers(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """[B, m, m] bool: candidate i is strictly preferred to j, both real. Ties give False."""
    s = scores(rewards, mask)
    real = mask.unsqueeze(2) & mask.unsqueeze(1)
    return real & (s.unsqueeze(2) > s.unsqueeze(1))


def implicit_reward(logps: Tensor, ref_logps: Tensor | None, mask: Tensor, beta: float) -> Tensor:
    """Implicit reward beta * log(pi/pi_ref); padding set to 0 so it can never produce inf/NaN."""
    ratio = logps if ref_logps is None else logps - ref_logps
    return (beta * ratio).masked_fill(~mask, 0.0)


def best_worst(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The first (best) and the last real (worst) entry of each list."""
    last = (mask.sum(1) - 1).clamp(min=0)
    return x[:, 0], x.gather(1, last.unsqueeze(1)).squeeze(1)


def pair_has_term(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """Best-vs-worst pair exists and is a strict preference (a tie is no preference)."""
    best, worst = best_worst(scores(rewards, mask), mask)
    return (mask.sum(1) >= 2) & (best > worst)


def mean_over_prompts(per_prompt: Tensor, has_term: Tensor) -> Tensor:
    """Mean over the prompts that carry a term; 0 (still attached to the graph) when none does."""
    per_prompt = torch.where(has_term, per_prompt, torch.zeros_like(per_prompt))
    return per_prompt.sum() / has_term.sum().clamp(min=1)


def pair_logratio(logps: Tensor, ref_logps: Tensor | None, mask: Tensor) -> tuple[Tensor, Tensor]:
    ratio = logps if ref_logps is None else logps - ref_logps
    return best_worst(ratio.masked_fill(~mask, 0.0), mask)


def normalised(x: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
    return x / lengths.clamp(min=1).masked_fill(~mask, 1).to(x.dtype)


def top_nll(logps: Tensor, mask: Tensor, lengths: Tensor | None) -> Tensor:
    """[B] NLL of each list's top candidate, per token when `lengths` are given (RAFT, the RPO /
    CPO extra term)."""
    return -(logps[:, 0] / lengths[:, 0].clamp(min=1) if lengths is not None else logps[:, 0])


def has_preference(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """A list carries a term when it has a strict preference: two real candidates, not all tied."""
    return prefers(rewards, mask).any((1, 2))
