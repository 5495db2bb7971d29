"""Ranking objectives: one pure function per objective, one signature for all.

Every objective takes
    logps, ref_logps : [B, m] summed response log-probs under the policy / reference
                       (ref_logps may be None for reference-free objectives)
    mask             : [B, m] bool, True for real candidates; shorter lists are padded at the end
    lengths          : [B, m] response token counts (length-normalised objectives), optional
    rewards          : [B, m] reranker scores; optional, used for ties and LiPO weights
with candidates sorted best first, and returns the mean loss over the prompts that carry a term.

A pair of candidates is a preference only when the first one's reward is *strictly* higher: tied
candidates give no pairwise term. Without rewards, the list order is a strict ranking.
The implicit reward is gamma = beta * (log pi_theta - log pi_ref) (the paper, Section 3).
Use `build(name, **hparams)`; `name` is an option of the objective group (src/larpo/conf/objective/),
whose file names the function with `_target_`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# ---------------------------------------------------------------------------------------------
# shared pieces


def _scores(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """Preference scores: the rewards, or minus the position when the list order is the ranking."""
    if rewards is not None:
        return rewards.to(torch.float64)
    return -torch.arange(mask.shape[1], dtype=torch.float64, device=mask.device).expand(mask.shape)


def _prefers(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """[B, m, m] bool: candidate i is strictly preferred to j, both real. Ties give False."""
    s = _scores(rewards, mask)
    real = mask.unsqueeze(2) & mask.unsqueeze(1)
    return real & (s.unsqueeze(2) > s.unsqueeze(1))


def _gamma(logps: Tensor, ref_logps: Tensor | None, mask: Tensor, beta: float) -> Tensor:
    """Implicit reward beta * log(pi/pi_ref); padding set to 0 so it can never produce inf/NaN."""
    ratio = logps if ref_logps is None else logps - ref_logps
    return (beta * ratio).masked_fill(~mask, 0.0)


def _best_worst(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The first (best) and the last real (worst) entry of each list."""
    last = (mask.sum(1) - 1).clamp(min=0)
    return x[:, 0], x.gather(1, last.unsqueeze(1)).squeeze(1)


def _pair_has_term(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """Best-vs-worst pair exists and is a strict preference (a tie is no preference)."""
    best, worst = _best_worst(_scores(rewards, mask), mask)
    return (mask.sum(1) >= 2) & (best > worst)


def _mean_over_prompts(per_prompt: Tensor, has_term: Tensor) -> Tensor:
    """Mean over the prompts that carry a term; 0 (still attached to the graph) when none does."""
    per_prompt = torch.where(has_term, per_prompt, torch.zeros_like(per_prompt))
    return per_prompt.sum() / has_term.sum().clamp(min=1)


def _pair_logratio(logps: Tensor, ref_logps: Tensor | None, mask: Tensor) -> tuple[Tensor, Tensor]:
    ratio = logps if ref_logps is None else logps - ref_logps
    return _best_worst(ratio.masked_fill(~mask, 0.0), mask)


def _normalised(x: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
    return x / lengths.clamp(min=1).masked_fill(~mask, 1).to(x.dtype)


# ---------------------------------------------------------------------------------------------
# LarPO objectives (the paper; its ListMLE denominator corrected)


def pairwise(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1) -> Tensor:
    """DPO (Rafailov et al., 2023): -log sigmoid(gamma_w - gamma_l), best against worst."""
    g_w, g_l = _best_worst(_gamma(logps, ref_logps, mask, beta), mask)
    return _mean_over_prompts(-F.logsigmoid(g_w - g_l), _pair_has_term(rewards, mask))


def contrastive(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1) -> Tensor:
    """1-vs-N InfoNCE (van den Oord et al., 2018): -log softmax of the top candidate.

    The denominator holds the top candidate and every candidate strictly worse than it;
    candidates tied with the top are not negatives.
    """
    g = _gamma(logps, ref_logps, mask, beta)
    negatives = _prefers(rewards, mask)[:, 0]
    in_denominator = negatives.clone()
    in_denominator[:, 0] = True
    lse = torch.logsumexp(g.masked_fill(~in_denominator, float("-inf")), dim=1)
    return _mean_over_prompts(lse - g[:, 0], negatives.any(1))


def lambdarank(
    logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False
) -> Tensor:
    """All-pairs RankNet (Burges, 2010), the paper's LambdaRank without |dNDCG| weights:
    -sum_{i<j} log sigmoid(gamma_i - gamma_j) over strictly preferred pairs.
    `normalize` divides by the number of pairs (one term's scale, like pairwise)."""
    g = _gamma(logps, ref_logps, mask, beta)
    pairs = _prefers(rewards, mask)
    terms = -F.logsigmoid(g.unsqueeze(2) - g.unsqueeze(1))
    per_prompt = (terms * pairs).sum((1, 2))
    if normalize:
        per_prompt = per_prompt / pairs.sum((1, 2)).clamp(min=1)
    return _mean_over_prompts(per_prompt, pairs.any((1, 2)))


def listmle(
    logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False
) -> Tensor:
    """Plackett-Luce likelihood (Xia et al., 2008) with the corrected denominator:
    -sum_i log( exp(gamma_i) / sum_{j>=i} exp(gamma_j) ).

    With ties, position i's denominator holds i and the candidates strictly worse than i, so a
    tied pair never acts as a preference. Padding is masked before the log-sum-exp.
    `normalize` divides by the number of positions that carry a term.
    """
    g = _gamma(logps, ref_logps, mask, beta)
    worse = _prefers(rewards, mask)
    in_denominator = worse | torch.eye(g.shape[1], dtype=torch.bool, device=g.device)
    lse = torch.logsumexp(g.unsqueeze(1).masked_fill(~in_denominator, float("-inf")), dim=2)
    has_position = worse.any(2)
    per_prompt = ((lse - g) * has_position).sum(1)
    if normalize:
        per_prompt = per_prompt / has_position.sum(1).clamp(min=1)
    return _mean_over_prompts(per_prompt, has_position.any(1))


def lipo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, normalize: bool = False) -> Tensor:
    """LiPO-lambda (Liu et al., 2024): pairs weighted by lambda_ij = |G_i - G_j| *
    |1/D(tau_i) - 1/D(tau_j)|, gain G = 2^label - 1, discount D(tau) = log2(1 + tau), tau the rank
    of a candidate under the policy's current implicit rewards. Labels are the rewards, or the
    reversed positions when no rewards are given."""
    g = _gamma(logps, ref_logps, mask, beta)
    pairs = _prefers(rewards, mask)
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
    return _mean_over_prompts(per_prompt, pairs.any((1, 2)))


# ---------------------------------------------------------------------------------------------
# the listwise family beyond the paper: InfoNCA, NCA, ApproxNDCG, NeuralNDCG, PRO; and RAFT


def _preference(rewards: Tensor | None, mask: Tensor) -> Tensor:
    """A list carries a term when it has a strict preference: two real candidates, not all tied."""
    return _prefers(rewards, mask).any((1, 2))


def _target(rewards: Tensor | None, mask: Tensor, alpha: float, dtype) -> Tensor:
    """softmax(psi / alpha) over the real candidates (0 in padding)."""
    psi = _scores(rewards, mask).to(dtype)
    return torch.softmax((psi / alpha).masked_fill(~mask, float("-inf")), dim=1).masked_fill(~mask, 0.0)


def infonca(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 1.0) -> Tensor:
    """InfoNCA (Chen et al., 2024, "Noise Contrastive Alignment of Language Models with Explicit
    Rewards"), ListNet with a temperature: -sum_i softmax(psi/alpha)_i log softmax(gamma)_i."""
    g = _gamma(logps, ref_logps, mask, beta)
    log_p = torch.log_softmax(g.masked_fill(~mask, float("-inf")), dim=1).masked_fill(~mask, 0.0)
    per_prompt = -(_target(rewards, mask, alpha, g.dtype) * log_p).sum(1)
    return _mean_over_prompts(per_prompt, _preference(rewards, mask))


def nca(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 1.0) -> Tensor:
    """NCA (Chen et al., 2024, same paper): -sum_i [softmax(psi/alpha)_i log sigmoid(gamma_i)
    + (1/K) log sigmoid(-gamma_i)], K the number of real candidates. Each candidate's own
    likelihood is pushed up by its weight and down by 1/K, not only relative to the others."""
    g = _gamma(logps, ref_logps, mask, beta)
    k = mask.sum(1, keepdim=True).clamp(min=1).to(g.dtype)
    terms = _target(rewards, mask, alpha, g.dtype) * F.logsigmoid(g) + F.logsigmoid(-g) / k
    per_prompt = -(terms * mask).sum(1)
    return _mean_over_prompts(per_prompt, _preference(rewards, mask))


def _gains(rewards: Tensor | None, mask: Tensor, gains: str, dtype) -> Tensor:
    """Graded gains 2^label - 1 of the real candidates (0 in padding). Real reward models give
    negative scores; `shift` makes labels relative to the list's worst candidate (label - min, so
    the worst gains 0 and the order is kept), `clamp` sets negative labels to 0 (as allRank)."""
    psi = _scores(rewards, mask).to(dtype)
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
    g = _gamma(logps, ref_logps, mask, beta)
    gain = _gains(rewards, mask, gains, g.dtype)
    pair = mask.unsqueeze(1) & mask.unsqueeze(2) & ~torch.eye(g.shape[1], dtype=torch.bool, device=g.device)
    beaten_by = torch.sigmoid(alpha * (g.unsqueeze(1) - g.unsqueeze(2)))  # [b, i, j]: sigma(alpha (g_j - g_i))
    approx_rank = 1.0 + (beaten_by * pair).sum(2)
    dcg = (gain / torch.log2(1.0 + approx_rank)).sum(1)
    ideal = _ideal_dcg(gain)
    has_term = ideal > 0
    return _mean_over_prompts(-dcg / ideal.clamp(min=1e-30), has_term)


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
    g = _gamma(logps, ref_logps, mask, beta).to(torch.float64)  # the relaxation underflows in float32
    gain = _gains(rewards, mask, gains, g.dtype)
    p = _sinkhorn(_neural_sort(g, mask, temperature), mask)
    sorted_gain = (p @ gain.unsqueeze(2)).squeeze(2)  # the gain expected at each rank
    discount = 1.0 / torch.log2(torch.arange(2, g.shape[1] + 2, device=g.device, dtype=g.dtype))
    dcg = (sorted_gain * discount).sum(1)
    ideal = _ideal_dcg(gain)
    return _mean_over_prompts(-dcg / (ideal + 1e-10), ideal > 0).to(logps.dtype)


def pro(logps, ref_logps, mask, lengths=None, rewards=None, *, dynamic_temperature: bool = True) -> Tensor:
    """PRO (Song et al., 2024, "Preference Ranking Optimization for Human Alignment"), reference-free:
    s_i = log pi(y_i) / |y_i|; for each position k, -log( exp(s_k t_k) / sum_{i >= k} exp(s_i t_i) )
    over k and the candidates strictly worse than k, with t_i = psi_k - psi_i and t_k = max_i t_i
    (dynamic temperature; all 1 without it, plain Plackett-Luce over s). Summed over positions."""
    s = _normalised(logps, lengths, mask).masked_fill(~mask, 0.0)
    worse = _prefers(rewards, mask)  # [b, k, i]: i strictly worse than k
    psi = _scores(rewards, mask).to(s.dtype)
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
    return _mean_over_prompts(per_prompt, has_position.any(1))


def raft(logps, ref_logps, mask, lengths=None, rewards=None) -> Tensor:
    """RAFT (Dong et al., 2023, "RAFT: Reward rAnked FineTuning"), best-of-k supervised fine-tuning:
    the length-normalised NLL of the top-ranked candidate, no ranking term. The control that
    separates a ranking objective from the NLL term that `sft_weight` adds to it."""
    nll = -_normalised(logps, lengths, mask)[:, 0] if lengths is not None else -logps[:, 0]
    return _mean_over_prompts(nll, _preference(rewards, mask))


# ---------------------------------------------------------------------------------------------
# baselines of Table 2, each from its own paper; on a list they use its best and worst candidate


def ipo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1) -> Tensor:
    """IPO (Azar et al., 2024): (h - 1/(2 tau))^2, h = log-ratio of winner minus loser, tau=beta."""
    r_w, r_l = _pair_logratio(logps, ref_logps, mask)
    return _mean_over_prompts((r_w - r_l - 1.0 / (2.0 * beta)) ** 2, _pair_has_term(rewards, mask))


def simpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 2.0, gamma: float = 1.0) -> Tensor:
    """SimPO (Meng et al., 2024), reference-free:
    -log sigmoid(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma)."""
    avg_w, avg_l = _best_worst(_normalised(logps, lengths, mask).masked_fill(~mask, 0.0), mask)
    loss = -F.logsigmoid(beta * (avg_w - avg_l) - gamma)
    return _mean_over_prompts(loss, _pair_has_term(rewards, mask))


def slic(logps, ref_logps, mask, lengths=None, rewards=None, *, delta: float = 1.0, reg_weight: float = 0.1) -> Tensor:
    """SLiC-HF (Zhao et al., 2023) rank calibration, reference-free:
    max(0, delta - log pi(y_w) + log pi(y_l)) - reg_weight * log pi(y_w)."""
    lp_w, lp_l = _best_worst(logps.masked_fill(~mask, 0.0), mask)
    loss = torch.relu(delta - lp_w + lp_l) - reg_weight * lp_w
    return _mean_over_prompts(loss, _pair_has_term(rewards, mask))


def rrhf(logps, ref_logps, mask, lengths=None, rewards=None, *, ft_weight: float = 1.0) -> Tensor:
    """RRHF (Yuan et al., 2023), reference-free: sum over strictly preferred pairs (i over j) of
    max(0, p_j - p_i) with p the length-normalised log-prob, plus ft_weight * -log pi(y_best)."""
    p = _normalised(logps, lengths, mask) if lengths is not None else logps
    p = p.masked_fill(~mask, 0.0)
    pairs = _prefers(rewards, mask)
    rank = (torch.relu(p.unsqueeze(1) - p.unsqueeze(2)) * pairs).sum((1, 2))
    return _mean_over_prompts(rank - ft_weight * logps[:, 0], pairs.any((1, 2)))


def cpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, nll_weight: float = 1.0) -> Tensor:
    """CPO (Xu et al., 2024), reference-free: -log sigmoid(beta (log pi(y_w) - log pi(y_l)))
    plus nll_weight times the NLL of y_w (per token when lengths are given, as in its code)."""
    lp_w, lp_l = _best_worst(logps.masked_fill(~mask, 0.0), mask)
    nll = -(logps[:, 0] / lengths[:, 0].clamp(min=1) if lengths is not None else logps[:, 0])
    loss = -F.logsigmoid(beta * (lp_w - lp_l)) + nll_weight * nll
    return _mean_over_prompts(loss, _pair_has_term(rewards, mask))


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
    r_w, r_l = _pair_logratio(logps, ref_logps, mask)
    has = _pair_has_term(rewards, mask)
    z0 = (((r_w + r_l) / 2) * has).sum() / has.sum().clamp(min=1)
    z0 = z0.clamp(min=0).detach()
    loss = desirable_weight * (1 - torch.sigmoid(beta * (r_w - z0))) + undesirable_weight * (
        1 - torch.sigmoid(beta * (z0 - r_l))
    )
    return _mean_over_prompts(loss, has)


def rdpo(logps, ref_logps, mask, lengths=None, rewards=None, *, beta: float = 0.1, alpha: float = 0.01) -> Tensor:
    """R-DPO (Park et al., 2024), DPO with a length penalty:
    -log sigmoid(beta (h_w - h_l) - alpha (|y_w| - |y_l|)), h the log-ratio."""
    r_w, r_l = _pair_logratio(logps, ref_logps, mask)
    len_w, len_l = _best_worst(lengths.to(logps.dtype).masked_fill(~mask, 0.0), mask)
    loss = -F.logsigmoid(beta * (r_w - r_l) - alpha * (len_w - len_l))
    return _mean_over_prompts(loss, _pair_has_term(rewards, mask))


# ---------------------------------------------------------------------------------------------
# a configured objective


def sft_term(logps: Tensor, mask: Tensor, lengths: Tensor | None) -> Tensor:
    """Length-normalised NLL of the top candidate (the RPO / CPO extra term), mean over lists."""
    nll = -(logps[:, 0] / lengths[:, 0].clamp(min=1) if lengths is not None else logps[:, 0])
    return _mean_over_prompts(nll, mask[:, 0])


class Objective:
    """A loss function with the objective contract, its hyperparameters bound, plus what larpo
    needs to know about it: `loss(logps, ref_logps, mask, lengths=None, rewards=None)`.

    `sft_weight` adds `sft_weight * sft_term` to any objective (0 is the paper's setting).
    `needs_reference` / `needs_lengths` are the objective's capabilities, declared in its option file.
    """

    def __init__(
        self,
        fn: Callable[..., Tensor],
        sft_weight: float = 0.0,
        needs_reference: bool = True,
        needs_lengths: bool = False,
    ):
        self.fn, self.sft_weight = fn, float(sft_weight)
        self.needs_reference, self.needs_lengths = needs_reference, needs_lengths
        base = getattr(fn, "func", fn)
        self.name = getattr(base, "__name__", type(base).__name__)
        self.hparams = dict(getattr(fn, "keywords", {}))

    def __call__(self, logps, ref_logps, mask, lengths=None, rewards=None) -> Tensor:
        if self.needs_reference and ref_logps is None:
            raise ValueError(f"objective {self.name!r} needs reference log-probs (ref_logps)")
        if self.needs_lengths and lengths is None:
            raise ValueError(f"objective {self.name!r} needs response lengths (lengths)")
        mask = mask.bool()
        loss = self.fn(logps, ref_logps, mask, lengths, rewards)
        if self.sft_weight:
            loss = loss + self.sft_weight * sft_term(logps, mask, lengths)
        return loss

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, sft_weight={self.sft_weight}, {self.hparams})"


def from_config(node) -> Objective:
    """The objective of an `objective` config node: its `_target_` with its hyperparameters bound,
    and its capabilities. Unknown hyperparameters fail here, naming the ones it takes."""
    from hydra.utils import instantiate

    from larpo.config import ConfigError, component

    fn = instantiate(component(node, "objective"))  # a function: `_partial_: true` binds its keywords
    base = getattr(fn, "func", fn)
    try:
        if base is not fn:
            inspect.signature(base).bind(None, None, None, None, None, **fn.keywords)
    except TypeError as err:
        allowed = [p.name for p in inspect.signature(base).parameters.values() if p.kind is p.KEYWORD_ONLY]
        raise ConfigError(
            "objective", node.get("_target_"), f"{err}", f"its hyperparameters are {allowed + ['sft_weight']}"
        ) from None
    return Objective(
        fn, node.get("sft_weight", 0.0), node.get("needs_reference", True), node.get("needs_lengths", False)
    )


def build(name: str, config_dir: str | None = None, **hparams) -> Objective:
    """The objective option `name` (a file of the objective group, shipped or in `config_dir`),
    composed with Hydra and instantiated, with `hparams` (and `sft_weight`) overriding its keys.
    Keys not given keep the config's defaults (`beta` 0.1, `sft_weight` 1.0 for most objectives).
    The programmatic entry point for notebooks and tests; unknown names list the known ones."""
    from hydra.errors import MissingConfigException
    from omegaconf import open_dict

    from larpo.config import ConfigError, compose

    try:
        node = compose([f"objective={name}"], config_dir=config_dir).objective
    except MissingConfigException as err:
        known = ", ".join(sorted(err.options or []))
        raise ValueError(f"unknown objective {name!r}; known objectives: {known}") from None
    with open_dict(node):
        for key, value in hparams.items():
            node[key] = value
    try:
        return from_config(node)
    except ConfigError as err:
        raise ValueError(str(err)) from None
