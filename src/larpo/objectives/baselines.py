"""Baselines of Table 2, each from its own paper; on a list they use its best and worst
candidate. Shapes and the tie rule: `larpo.objectives.contract`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from larpo.objectives.common import (
    best_worst,
    mean_over_prompts,
    normalised,
    pair_has_term,
    pair_logratio,
    prefers,
    top_nll,
)


def ipo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1) -> Tensor:
    """IPO (Azar et al., 2024): (h - 1/(2 tau))^2, h = log-ratio of winner minus loser, tau=beta."""
    r_w, r_l = pair_logratio(logps, ref_logps, mask)
    return mean_over_prompts((r_w - r_l - 1.0 / (2.0 * beta)) ** 2, pair_has_term(rewards, mask))


def simpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 2.0, gamma: float = 1.0) -> Tensor:
    """SimPO (Meng et al., 2024), reference-free:
    -log sigmoid(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma)."""
    avg_w, avg_l = best_worst(normalised(logps, lengths, mask).masked_fill(~mask, 0.0), mask)
    loss = -F.logsigmoid(beta * (avg_w - avg_l) - gamma)
    return mean_over_prompts(loss, pair_has_term(rewards, mask))


def slic(logps, ref_logps, mask, lengths=None, rewards=None, *, delta: float = 1.0, reg_weight: float = 0.1) -> Tensor:
    """SLiC-HF (Zhao et al., 2023) rank calibration, reference-free:
    max(0, delta - log pi(y_w) + log pi(y_l)) - reg_weight * log pi(y_w)."""
    lp_w, lp_l = best_worst(logps.masked_fill(~mask, 0.0), mask)
    loss = torch.relu(delta - lp_w + lp_l) - reg_weight * lp_w
    return mean_over_prompts(loss, pair_has_term(rewards, mask))


def rrhf(logps, ref_logps, mask, lengths=None, rewards=None, *, ft_weight: float = 1.0) -> Tensor:
    """RRHF (Yuan et al., 2023), reference-free: sum over strictly preferred pairs (i over j) of
    max(0, p_j - p_i) with p the length-normalised log-prob, plus ft_weight * -log pi(y_best)."""
    p = normalised(logps, lengths, mask) if lengths is not None else logps
    p = p.masked_fill(~mask, 0.0)
    pairs = prefers(rewards, mask)
    rank = (torch.relu(p.unsqueeze(1) - p.unsqueeze(2)) * pairs).sum((1, 2))
    return mean_over_prompts(rank - ft_weight * logps[:, 0], pairs.any((1, 2)))


def cpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, nll_weight: float = 1.0) -> Tensor:
    """CPO (Xu et al., 2024), reference-free: -log sigmoid(beta (log pi(y_w) - log pi(y_l)))
    plus nll_weight times the NLL of y_w (per token when lengths are given, as in its code)."""
    lp_w, lp_l = best_worst(logps.masked_fill(~mask, 0.0), mask)
    nll = top_nll(logps, mask, lengths)
    loss = -F.logsigmoid(beta * (lp_w - lp_l)) + nll_weight * nll
    return mean_over_prompts(loss, pair_has_term(rewards, mask))


def kto(
    logps,
    ref_logps,
    mask,
    lengths=None,
    rewards=None,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> Tensor:
    """KTO (Ethayarajh et al., 2024): the best candidate is desirable, the worst undesirable.
    lambda_D (1 - sigmoid(beta (r_w - z0))) + lambda_U (1 - sigmoid(beta (z0 - r_l))), r the
    log-ratio; z0, the reference point, is the batch mean log-ratio of those candidates, clamped
    at 0 and detached (the paired batch estimate of the KL term)."""
    r_w, r_l = pair_logratio(logps, ref_logps, mask)
    has = pair_has_term(rewards, mask)
    z0 = (((r_w + r_l) / 2) * has).sum() / has.sum().clamp(min=1)
    z0 = z0.clamp(min=0).detach()
    loss = desirable_weight * (1 - torch.sigmoid(beta * (r_w - z0))) + undesirable_weight * (
        1 - torch.sigmoid(beta * (z0 - r_l))
    )
    return mean_over_prompts(loss, has)


def rdpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 0.01) -> Tensor:
    """R-DPO (Park et al., 2024), DPO with a length penalty:
    -log sigmoid(beta (h_w - h_l) - alpha (|y_w| - |y_l|)), h the log-ratio."""
    r_w, r_l = pair_logratio(logps, ref_logps, mask)
    len_w, len_l = best_worst(lengths.to(logps.dtype).masked_fill(~mask, 0.0), mask)
    loss = -F.logsigmoid(beta * (r_w - r_l) - alpha * (len_w - len_l))
    return mean_over_prompts(loss, pair_has_term(rewards, mask))
