"""The paper's objectives (LarPO, Section 4): pairwise, contrastive, LambdaRank, ListMLE (its
denominator corrected), and LiPO-lambda. Shapes and the tie rule: `larpo.objectives.contract`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from larpo.objectives.common import (
    best_worst,
    implicit_reward,
    mean_over_prompts,
    pair_has_term,
    prefers,
    scores,
)


def pairwise(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1) -> Tensor:
    """DPO (Rafailov et al., 2023): -log sigmoid(gamma_w - gamma_l), best against worst."""
    g_w, g_l = best_worst(implicit_reward(logps, ref_logps, mask, beta), mask)
    return mean_over_prompts(-F.logsigmoid(g_w - g_l), pair_has_term(rewards, mask))


def contrastive(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, positives: int = 1) -> Tensor:
    """InfoNCE (van den Oord et al., 2018) as the paper's code defines it for `positive_N`
    positives: -(logsumexp of gamma over the positives - logsumexp over positives and negatives).

    The positives are the list's first `positives` candidates (the kept ones: the option binds
    `objective.keep.positives`); the negatives are the candidates after them strictly worse than
    the lowest positive. A candidate tied with it is neither, so a tie is never a preference; one
    positive is the 1-vs-N form, the top against every strictly worse candidate.
    """
    g = implicit_reward(logps, ref_logps, mask, beta)
    s = scores(rewards, mask)
    is_positive = mask & (torch.arange(g.shape[1], device=g.device) < positives)
    lowest = s.masked_fill(~is_positive, float("inf")).min(1, keepdim=True).values
    negatives = mask & ~is_positive & (s < lowest)
    numerator = torch.logsumexp(g.masked_fill(~is_positive, float("-inf")), dim=1)
    denominator = torch.logsumexp(g.masked_fill(~(is_positive | negatives), float("-inf")), dim=1)
    return mean_over_prompts(denominator - numerator, negatives.any(1))


def lambdarank(
    logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False
) -> Tensor:
    """All-pairs RankNet (Burges, 2010), the paper's LambdaRank without |dNDCG| weights:
    -sum_{i<j} log sigmoid(gamma_i - gamma_j) over strictly preferred pairs.
    `normalize` divides by the number of pairs (one term's scale, like pairwise)."""
    g = implicit_reward(logps, ref_logps, mask, beta)
    pairs = prefers(rewards, mask)
    terms = -F.logsigmoid(g.unsqueeze(2) - g.unsqueeze(1))
    per_prompt = (terms * pairs).sum((1, 2))
    if normalize:
        per_prompt = per_prompt / pairs.sum((1, 2)).clamp(min=1)
    return mean_over_prompts(per_prompt, pairs.any((1, 2)))


def listmle(
    logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False
) -> Tensor:
    """Plackett-Luce likelihood (Xia et al., 2008) with the corrected denominator:
    -sum_i log( exp(gamma_i) / sum_{j>=i} exp(gamma_j) ).

    With ties, position i's denominator holds i and the candidates strictly worse than i, so a
    tied pair never acts as a preference. Padding is masked before the log-sum-exp.
    `normalize` divides by the number of positions that carry a term.
    """
    g = implicit_reward(logps, ref_logps, mask, beta)
    worse = prefers(rewards, mask)
    in_denominator = worse | torch.eye(g.shape[1], dtype=torch.bool, device=g.device)
    lse = torch.logsumexp(g.unsqueeze(1).masked_fill(~in_denominator, float("-inf")), dim=2)
    has_position = worse.any(2)
    per_prompt = ((lse - g) * has_position).sum(1)
    if normalize:
        per_prompt = per_prompt / has_position.sum(1).clamp(min=1)
    return mean_over_prompts(per_prompt, has_position.any(1))


def lipo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False) -> Tensor:
    """LiPO-lambda (Liu et al., 2024): pairs weighted by lambda_ij = |G_i - G_j| *
    |1/D(tau_i) - 1/D(tau_j)|, gain G = 2^label - 1, discount D(tau) = log2(1 + tau), tau the rank
    of a candidate under the policy's current implicit rewards. Labels are the rewards, or the
    reversed positions when no rewards are given."""
    g = implicit_reward(logps, ref_logps, mask, beta)
    pairs = prefers(rewards, mask)
    m = g.shape[1]
    labels = rewards if rewards is not None else (m - 1 - torch.arange(m, device=g.device)).expand_as(g)
    gain = torch.exp2(labels.to(g.dtype).masked_fill(~mask, 0.0))
    order = g.detach().masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True, stable=True)
    tau = torch.empty_like(order).scatter_(1, order, torch.arange(1, m + 1, device=g.device).expand_as(order))
    inv_discount = 1.0 / torch.log2(1.0 + tau.to(g.dtype))
    weight = (gain.unsqueeze(2) - gain.unsqueeze(1)).abs() * (
        inv_discount.unsqueeze(2) - inv_discount.unsqueeze(1)
    ).abs()
    terms = -F.logsigmoid(g.unsqueeze(2) - g.unsqueeze(1)) * weight.detach()
    per_prompt = (terms * pairs).sum((1, 2))
    if normalize:
        per_prompt = per_prompt / pairs.sum((1, 2)).clamp(min=1)
    return mean_over_prompts(per_prompt, pairs.any((1, 2)))
