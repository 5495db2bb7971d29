"""Policy-gradient objectives over the same lists: GRPO (Shao et al., 2024) and RLOO (Ahmadian et
al., 2024), as TRL 1.16's GRPOTrainer and RLOOTrainer compute them. Shapes: `contract`.

Each candidate's advantage comes from its list's rewards (every candidate is used, none is
selected), and the loss is the clipped surrogate against the policy that sampled the list. Its
log-probs are `ref_logps` where the option asks for them (`needs_reference: true` with
`reference=behavior`: the policy at the start of the iteration, which sampled the lists); without
them, the current policy's own, detached: the first pass over fresh samples, where the ratio is 1
(TRL with `num_iterations=1`, one optimizer step per generation).

Summed log-probs give TRL's per-token loss exactly where the ratio is 1 or is taken per sequence:
a token-level ratio of 1 gives each token the loss -A (value) and -A grad log p_t (gradient), the
same as -A L exp((log p - log p_old) / L) for the sequence. TRL's KL term (k3 per token) and
token-level ratios away from 1 cannot be had from sums; the config check refuses them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from larpo.objectives.schema import LossType


def unbiased_std(x: Tensor, mask: Tensor, dim: tuple[int, ...]) -> Tensor:
    """The unbiased standard deviation of the real entries over `dim`, kept as size-1 dims (TRL's
    `nanstd`); 0 where fewer than two entries are real."""
    n = mask.sum(dim, keepdim=True)
    mean = x.masked_fill(~mask, 0.0).sum(dim, keepdim=True) / n.clamp(min=1)
    sq = ((x - mean) ** 2).masked_fill(~mask, 0.0).sum(dim, keepdim=True)
    return torch.where(n > 1, (sq / (n - 1).clamp(min=1)).sqrt(), torch.zeros_like(sq))


def group_advantages(rewards: Tensor, mask: Tensor, scale_rewards: str = "group") -> Tensor:
    """GRPO's advantage of each candidate, [B, m]: its reward less its list's mean, divided by the
    list's standard deviation plus 1e-4 (`group`), the batch's (`batch`) or nothing (`none`). An
    all-tied list has advantage 0; padding has 0."""
    r = rewards.to(torch.float64).masked_fill(~mask, 0.0)
    n = mask.sum(1, keepdim=True).clamp(min=1)
    advantage = r - r.sum(1, keepdim=True) / n
    if scale_rewards == "group":
        advantage = advantage / (unbiased_std(r, mask, (1,)) + 1e-4)
    elif scale_rewards == "batch":
        advantage = advantage / (unbiased_std(r, mask, (0, 1)) + 1e-4)
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards={scale_rewards!r}: use group, batch or none")
    return advantage.masked_fill(~mask, 0.0)


def leave_one_out_advantages(rewards: Tensor, mask: Tensor, normalize_advantages: bool = False) -> Tensor:
    """RLOO's advantage, [B, m]: each reward less the mean of the other real candidates' rewards;
    `normalize_advantages` standardises them over the batch (TRL's option). A list of one has 0."""
    r = rewards.to(torch.float64).masked_fill(~mask, 0.0)
    n = mask.sum(1, keepdim=True)
    baseline = (r.sum(1, keepdim=True) - r) / (n - 1).clamp(min=1)
    advantage = torch.where((n > 1) & mask, r - baseline, torch.zeros_like(r))
    if normalize_advantages:
        mean = advantage.masked_fill(~mask, 0.0).sum() / mask.sum().clamp(min=1)
        advantage = ((advantage - mean) / (unbiased_std(advantage, mask, (0, 1)) + 1e-4)).masked_fill(~mask, 0.0)
    return advantage


def clipped(ratio: Tensor, advantage: Tensor, epsilon: float, epsilon_high: float | None) -> Tensor:
    """PPO's clipped surrogate per candidate, -min(rho A, clip(rho, 1 - eps, 1 + eps_high) A)."""
    high = epsilon if epsilon_high is None else epsilon_high
    return -torch.min(ratio * advantage, torch.clamp(ratio, 1 - epsilon, 1 + high) * advantage)


def grpo(
    logps,
    ref_logps,
    mask,
    lengths=None,
    rewards=None,
    *,
    scale_rewards: str = "group",
    loss_type: str = "dapo",
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
) -> Tensor:
    """GRPO with TRL 1.16's options. Per candidate of L tokens, the summed per-token loss is
    L * -min(rho A, clip(rho) A), rho = exp((log pi - log pi_old) / L); then `loss_type`:
    `grpo` the mean over candidates of the per-token mean, `bnpo`/`dapo` the sum over the batch's
    tokens divided by their count, `dr_grpo` the sum divided by candidates x max_completion_length.
    With `importance_sampling_level=sequence` (GSPO) the sampling policy's log-probs are
    `ref_logps` when given; at the token level (and without them) they are the policy's own,
    detached: ratio 1, the first pass over fresh samples."""
    if importance_sampling_level not in ("token", "sequence"):
        raise ValueError(f"importance_sampling_level={importance_sampling_level!r}: use token or sequence")
    advantage = group_advantages(rewards, mask, scale_rewards).to(logps.dtype)
    tokens = lengths.to(logps.dtype).clamp(min=1).masked_fill(~mask, 1.0)
    old = ref_logps if ref_logps is not None and importance_sampling_level == "sequence" else logps.detach()
    ratio = torch.exp(((logps - old) / tokens).masked_fill(~mask, 0.0))
    summed = (tokens * clipped(ratio, advantage, epsilon, epsilon_high)).masked_fill(~mask, 0.0)
    kind = LossType(loss_type) if loss_type in {t.value for t in LossType} else None
    if kind is LossType.grpo:
        return (summed / tokens).sum() / mask.sum().clamp(min=1)
    if kind in (LossType.bnpo, LossType.dapo):
        return summed.sum() / tokens.masked_fill(~mask, 0.0).sum().clamp(min=1)
    if kind is LossType.dr_grpo:
        if not max_completion_length:
            raise ValueError("loss_type=dr_grpo needs max_completion_length")
        return summed.sum() / (mask.sum() * max_completion_length)
    raise ValueError(f"loss_type={loss_type!r}: use grpo, bnpo, dr_grpo or dapo")


def rloo(
    logps,
    ref_logps,
    mask,
    lengths=None,
    rewards=None,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    normalize_advantages: bool = False,
) -> Tensor:
    """RLOO as TRL 1.16's RLOOTrainer: the leave-one-out advantage, the clipped surrogate with the
    sequence's ratio rho = exp(log pi - log pi_old) (summed log-probs), the mean over candidates.
    The sampling policy's log-probs are `ref_logps` when given, else the policy's own, detached."""
    advantage = leave_one_out_advantages(rewards, mask, normalize_advantages).to(logps.dtype)
    old = ref_logps if ref_logps is not None else logps.detach()
    ratio = torch.exp((logps - old).masked_fill(~mask, 0.0))
    per_candidate = clipped(ratio, advantage, epsilon, epsilon_high).masked_fill(~mask, 0.0)
    return per_candidate.sum() / mask.sum().clamp(min=1)
