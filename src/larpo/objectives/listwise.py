"""The listwise family beyond the paper: InfoNCA, NCA, ApproxNDCG, NeuralNDCG, PRO; and RAFT,
the control with no ranking term. Shapes and the tie rule: `larpo.objectives.contract`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from larpo.objectives.common import (
    has_preference,
    implicit_reward,
    mean_over_prompts,
    normalised,
    prefers,
    scores,
    top_nll,
)


def _target(rewards: Tensor | None, mask: Tensor, alpha: float, dtype) -> Tensor:
    """softmax(psi / alpha) over the real candidates (0 in padding)."""
    psi = scores(rewards, mask).to(dtype)
    return torch.softmax((psi / alpha).masked_fill(~mask, float("-inf")), dim=1).masked_fill(~mask, 0.0)


def infonca(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 1.0) -> Tensor:
    """InfoNCA (Chen et al., 2024, "Noise Contrastive Alignment of Language Models with Explicit
    Rewards"), ListNet with a temperature: -sum_i softmax(psi/alpha)_i log softmax(gamma)_i."""
    g = implicit_reward(logps, ref_logps, mask, beta)
    log_p = torch.log_softmax(g.masked_fill(~mask, float("-inf")), dim=1).masked_fill(~mask, 0.0)
    per_prompt = -(_target(rewards, mask, alpha, g.dtype) * log_p).sum(1)
    return mean_over_prompts(per_prompt, has_preference(rewards, mask))


def nca(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 1.0) -> Tensor:
    """NCA (Chen et al., 2024, same paper): -sum_i [softmax(psi/alpha)_i log sigmoid(gamma_i)
    + (1/K) log sigmoid(-gamma_i)], K the number of real candidates. Each candidate's own
    likelihood is pushed up by its weight and down by 1/K, not only relative to the others."""
    g = implicit_reward(logps, ref_logps, mask, beta)
    k = mask.sum(1, keepdim=True).clamp(min=1).to(g.dtype)
    terms = _target(rewards, mask, alpha, g.dtype) * F.logsigmoid(g) + F.logsigmoid(-g) / k
    per_prompt = -(terms * mask).sum(1)
    return mean_over_prompts(per_prompt, has_preference(rewards, mask))


def _gains(rewards: Tensor | None, mask: Tensor, gains: str, dtype) -> Tensor:
    """Graded gains 2^label - 1 of the real candidates (0 in padding). Real reward models give
    negative scores; `shift` makes labels relative to the list's worst candidate (label - min, so
    the worst gains 0 and the order is kept), `clamp` sets negative labels to 0 (as allRank)."""
    psi = scores(rewards, mask).to(dtype)
    if gains == "shift":
        low = psi.masked_fill(~mask, float("inf")).min(1, keepdim=True).values
        labels = psi - low
    elif gains == "clamp":
        labels = psi.clamp(min=0.0)
    else:
        raise ValueError(f"gains={gains!r}: use shift or clamp")
    return (torch.exp2(labels) - 1.0).masked_fill(~mask, 0.0)


def _ideal_dcg(gain: Tensor) -> Tensor:
    discount = 1.0 / torch.log2(torch.arange(2, gain.shape[1] + 2, device=gain.device, dtype=gain.dtype))
    return (gain.sort(dim=1, descending=True).values * discount).sum(1)


def approxndcg(
    logps,
    ref_logps,
    mask,
    lengths=None,
    rewards=None,
    *,
    beta: float = 0.1,
    alpha: float = 1.0,
    gains: str = "shift",
) -> Tensor:
    """ApproxNDCG (Qin, Liu & Li, 2010, "A general approximation framework for direct optimization
    of information retrieval measures"; as allRank's approxNDCGLoss): the rank of candidate i is
    approximated by 1 + sum_{j != i} sigmoid(alpha (gamma_j - gamma_i)), and the loss is
    -sum_i G_i / log2(1 + approxrank_i) / maxDCG with gains G = 2^psi - 1 (see `_gains`)."""
    g = implicit_reward(logps, ref_logps, mask, beta)
    gain = _gains(rewards, mask, gains, g.dtype)
    pair = mask.unsqueeze(1) & mask.unsqueeze(2) & ~torch.eye(g.shape[1], dtype=torch.bool, device=g.device)
    beaten_by = torch.sigmoid(alpha * (g.unsqueeze(1) - g.unsqueeze(2)))  # [b, i, j]: sigma(alpha (g_j - g_i))
    approx_rank = 1.0 + (beaten_by * pair).sum(2)
    dcg = (gain / torch.log2(1.0 + approx_rank)).sum(1)
    ideal = _ideal_dcg(gain)
    has_term = ideal > 0
    return mean_over_prompts(-dcg / ideal.clamp(min=1e-30), has_term)


def _neural_sort(s: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """Deterministic NeuralSort (Grover et al., 2019) of each list's real entries: row r (rank r+1)
    is softmax(((K + 1 - 2(r+1)) s_j - sum_k |s_j - s_k|) / temperature) over the K real j."""
    real = mask.unsqueeze(1) & mask.unsqueeze(2)
    spread = ((s.unsqueeze(2) - s.unsqueeze(1)).abs() * real).sum(2)  # [b, j]
    k = mask.sum(1, keepdim=True).to(s.dtype)
    rank = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)
    scale = k + 1.0 - 2.0 * rank  # [b, r]
    logits = (scale.unsqueeze(2) * s.unsqueeze(1) - spread.unsqueeze(1)) / temperature
    # padded columns never receive mass; padded rows are computed, then filled (masked_fill, not a
    # product: its gradient is exactly 0 there, never inf * 0)
    return torch.softmax(logits.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=2).masked_fill(~real, 0.0)


def _sinkhorn(p: Tensor, mask: Tensor, tol: float = 1e-6, max_iter: int = 50) -> Tensor:
    """Alternate column and row normalisation until both sums are within `tol` of 1. As allRank,
    the padded block is filled with ones first, so no row or column sums to zero (a zero sum
    would divide gradients by the clamp, 1e10 per iteration, until they overflow)."""
    real = mask.unsqueeze(1) & mask.unsqueeze(2)
    p = p.masked_fill(~mask.unsqueeze(1) & ~mask.unsqueeze(2), 1.0)
    for _ in range(max_iter):
        p = p / p.sum(1, keepdim=True).clamp(min=1e-10)
        p = p / p.sum(2, keepdim=True).clamp(min=1e-10)
        rows = (p.sum(2) - 1.0).abs().masked_fill(~mask, 0.0)
        cols = (p.sum(1) - 1.0).abs().masked_fill(~mask, 0.0)
        if rows.max() < tol and cols.max() < tol:
            break
    return p.masked_fill(~real, 0.0)


def neuralndcg(
    logps,
    ref_logps,
    mask,
    lengths=None,
    rewards=None,
    *,
    beta: float = 0.1,
    temperature: float = 1.0,
    gains: str = "shift",
) -> Tensor:
    """NeuralNDCG (Pobrotyn & Bialobrzeski, 2021, "NeuralNDCG: Direct Optimisation of a Ranking
    Metric via Differentiable Relaxation of Sorting"), allRank's defaults: the sort of the implicit
    rewards relaxed by deterministic NeuralSort at `temperature`, made doubly stochastic by Sinkhorn
    scaling, applied to powered gains 2^psi - 1 (see `_gains`), full list; -NDCG."""
    g = implicit_reward(logps, ref_logps, mask, beta).to(torch.float64)  # the relaxation underflows in float32
    gain = _gains(rewards, mask, gains, g.dtype)
    p = _sinkhorn(_neural_sort(g, mask, temperature), mask)
    sorted_gain = (p @ gain.unsqueeze(2)).squeeze(2)  # the gain expected at each rank
    discount = 1.0 / torch.log2(torch.arange(2, g.shape[1] + 2, device=g.device, dtype=g.dtype))
    dcg = (sorted_gain * discount).sum(1)
    ideal = _ideal_dcg(gain)
    return mean_over_prompts(-dcg / (ideal + 1e-10), ideal > 0).to(logps.dtype)


def pro(logps, ref_logps, mask, lengths=None, rewards=None, *, dynamic_temperature: bool = True) -> Tensor:
    """PRO (Song et al., 2024, "Preference Ranking Optimization for Human Alignment"), reference-free:
    s_i = log pi(y_i) / |y_i|; for each position k, -log( exp(s_k t_k) / sum_{i >= k} exp(s_i t_i) )
    over k and the candidates strictly worse than k, with t_i = psi_k - psi_i and t_k = max_i t_i
    (dynamic temperature; all 1 without it, plain Plackett-Luce over s). Summed over positions."""
    s = normalised(logps, lengths, mask).masked_fill(~mask, 0.0)
    worse = prefers(rewards, mask)  # [b, k, i]: i strictly worse than k
    psi = scores(rewards, mask).to(s.dtype)
    if dynamic_temperature:
        t = (psi.unsqueeze(2) - psi.unsqueeze(1)).masked_fill(~worse, 0.0)  # [b, k, i]
        t_self = t.max(2).values
    else:
        t = worse.to(s.dtype)
        t_self = torch.ones_like(s)
    own = s * t_self  # [b, k]
    others = (s.unsqueeze(1) * t).masked_fill(~worse, float("-inf"))
    lse = torch.logsumexp(torch.cat([own.unsqueeze(2), others], dim=2), dim=2)
    has_position = worse.any(2)
    per_prompt = ((lse - own) * has_position).sum(1)
    return mean_over_prompts(per_prompt, has_position.any(1))


def raft(logps, ref_logps, mask, lengths=None, rewards=None) -> Tensor:
    """RAFT (Dong et al., 2023, "RAFT: Reward rAnked FineTuning"), best-of-k supervised fine-tuning:
    the length-normalised NLL of the top-ranked candidate, no ranking term. The control that
    separates a ranking objective from the NLL term that `sft_weight` adds to it."""
    return mean_over_prompts(top_nll(logps, mask, lengths), has_preference(rewards, mask))
