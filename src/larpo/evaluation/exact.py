"""Evaluation without sampling noise: the policy's distribution over a window of answers, scored
exactly.

Where a world can list the answers a policy plausibly gives (`Source.answers`: the arithmetic
world's truth ± 20, the digits world's dropped-carry and one-slip variants of the truth), the
log-probability of every answer (ending with EOS) is computed in batched forward passes, and the
metrics sampling estimates are computed from the distribution itself:
- `exact_accuracy`: P(the true answer), exact whatever the window;
- `exact_gold_reward`: E[gold reward] over the window (answers outside count 0: a lower bound);
- `exact_win_rate_vs_sft`: P(policy answer beats an SFT answer) + half P(tie), both drawn from
  their distributions; answers outside the window are one class below every answer in it;
- `exact_entropy`: entropy of the distribution over the window (nats);
- `exact_mode_correct`: share of prompts whose most likely window answer is the truth;
- `exact_mass_outside`: mean probability outside the window, which bounds the approximations.
The distribution is the one sampling at `temperature` draws from (T=0: all mass on the most
likely window answer).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import torch

from larpo.sequences import cache_key, encode_prompt, encode_response, output_cache, sequence_logps, unflatten


class ExactEvaluator:
    def __init__(
        self,
        prompts: list[str],
        judge: Callable[[str, str], float],
        reference: Callable[[str], str | None],
        answers: Callable[[str], list[str]],
        temperature: float = 1.0,
    ):
        self.prompts, self.temperature = prompts, temperature
        self.windows = [list(dict.fromkeys(answers(p))) for p in prompts]
        self.rewards = [[judge(p, a) for a in w] for p, w in zip(prompts, self.windows, strict=True)]
        self.truth = [reference(p) for p in prompts]
        self.baseline: list[list[float]] | None = None
        self._cache: tuple[object, list[list[float]]] | None = None  # (model, P at T=1) of the last call

    def distribution(self, model, tokenizer, temperature: float | None = None) -> list[list[float]]:
        """P(answer) for every answer of every prompt's window, sampling at `temperature` (None:
        the evaluation's)."""
        temperature = self.temperature if temperature is None else temperature
        if temperature in (0, 1) and self._cache is not None and self._cache[0] is model:
            probs = self._cache[1]  # the same weights: greedy is the mode of the T=1 distribution
            return probs if temperature == 1 else [mode_only(p) for p in probs]
        t = temperature if temperature > 0 else 1.0
        logps = window_logps(model, tokenizer, self.prompts, self.windows, temperature=t)
        out = [[math.exp(lp) for lp in row] for row in logps]
        if temperature in (0, 1):
            self._cache = (model, out)
        return [mode_only(p) for p in out] if temperature == 0 else out

    def set_baseline(self, model, tokenizer) -> None:
        """The SFT policy's distribution: the opponent of the exact win rate."""
        self.baseline = self.distribution(model, tokenizer)

    def forget(self) -> None:
        """Drop the cached distribution: the model's weights are about to change."""
        self._cache = None

    def __call__(self, model, tokenizer, temperature: float | None = None) -> dict[str, float]:
        probs = self.distribution(model, tokenizer, temperature)
        if self.baseline is None:
            self.baseline = probs
        return exact_metrics(probs, self.baseline, self.rewards, self.windows, self.truth)


@torch.no_grad()
def window_logps(
    model, tokenizer, prompts: list[str], windows: list[list[str]], temperature: float = 1.0, rows: int = 2048
) -> list[list[float]]:
    """Summed log-probs of every answer (ending with EOS) of every prompt's window, at `temperature`.

    A window's answers share their prompt, so each prompt's forward pass runs once and its KV
    cache is repeated for its answers: the answers' tokens alone go through the model (about a
    third of the tokens of scoring prompt + answer pairs in the arithmetic world). Prompts of one
    token length are batched together (no padding in the cache); answers are right-padded, so
    every real token sits at its own position. `rows`: answers per forward pass. A model whose
    forward takes no KV cache scores every (prompt, answer) pair whole instead."""
    if cache_key(model) is None:
        seqs = [
            (encode_prompt(tokenizer, p), encode_response(tokenizer, a)) for p, w in zip(prompts, windows) for a in w
        ]
        return unflatten(sequence_logps(model, seqs, tokenizer.pad_token_id, temperature=temperature), windows)
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id
    prompt_ids = [encode_prompt(tokenizer, p) for p in prompts]
    answer_ids = [[encode_response(tokenizer, a) for a in w] for w in windows]
    out = [[0.0] * len(w) for w in windows]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(prompt_ids):
        if windows[i]:
            by_length[len(ids)].append(i)
    for members in by_length.values():
        for group in _fill(members, [len(windows[i]) for i in members], rows):
            prompts_of, answers_of = [prompt_ids[i] for i in group], [answer_ids[i] for i in group]
            summed = _group_logps(model, prompts_of, answers_of, pad, temperature)
            r = 0
            for i in group:
                out[i] = summed[r : r + len(windows[i])]
                r += len(windows[i])
    model.train(was_training)
    return out


def _group_logps(model, prompts: list[list[int]], answers_of: list[list[list[int]]], pad: int, temperature: float):
    """Summed log-probs of the answers of prompts of one token length: one forward pass of the
    prompts, their KV cache repeated for their answers, one pass of the answers."""
    prompt = torch.tensor(prompts, device=model.device)
    head = model(input_ids=prompt, attention_mask=torch.ones_like(prompt), use_cache=True)
    owner = [g for g, own in enumerate(answers_of) for _ in own]
    answers = [a for own in answers_of for a in own]
    width = max(map(len, answers))
    ids = torch.full((len(answers), width), pad, dtype=torch.long)
    mask = torch.zeros((len(answers), width), dtype=torch.long)
    for r, a in enumerate(answers):
        ids[r, : len(a)], mask[r, : len(a)] = torch.tensor(a), 1
    ids, mask = ids.to(model.device), mask.to(model.device)
    cache = output_cache(head)
    owners = torch.tensor(owner, device=model.device)
    cache.batch_select_indices(owners)  # each answer row gets its prompt's keys and values
    attention = torch.cat([torch.ones((len(answers), prompt.shape[1]), device=model.device), mask], 1)
    tail = model(input_ids=ids, attention_mask=attention.long(), use_cache=False, **{cache_key(model): cache})
    # the answer's first token is predicted by the prompt's last position, the rest by the answer's
    logits = torch.cat([head.logits[owners, -1:].float(), tail.logits[:, :-1].float()], 1) / temperature
    # gather minus logsumexp: never materialises a full log-softmax over the vocabulary
    logp = logits.gather(2, ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (logp * mask).sum(1).tolist()


def _fill(members: list[int], sizes: list[int], rows: int) -> list[list[int]]:
    """Consecutive groups of prompts whose windows together hold at most `rows` answers (a prompt
    with a larger window forms a group of its own)."""
    groups, current, used = [], [], 0
    for i, n in zip(members, sizes, strict=True):
        if current and used + n > rows:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    return groups + ([current] if current else [])


def mode_only(p: list[float]) -> list[float]:
    """Greedy decoding's distribution over a window: all the mass on the most likely answer."""
    best = max(range(len(p)), key=p.__getitem__) if p else 0
    return [float(j == best) for j in range(len(p))]


def win_probability(p: list[float], q: list[float], rewards: list[float]) -> float:
    """P(a > b) + P(a = b) / 2 for a ~ p, b ~ q over one window; the mass outside the window of
    each is one class below every answer in it."""
    p_out, q_out = max(0.0, 1 - sum(p)), max(0.0, 1 - sum(q))
    win = sum(
        pa * qb * ((ra > rb) + 0.5 * (ra == rb))
        for pa, ra in zip(p, rewards, strict=True)
        for qb, rb in zip(q, rewards, strict=True)
    )
    return win + sum(p) * q_out + 0.5 * p_out * q_out


def exact_metrics(
    probs: list[list[float]],
    baseline: list[list[float]],
    rewards: list[list[float]],
    windows: list[list[str]],
    truth: list[str | None],
) -> dict[str, float]:
    n = max(1, len(probs))
    acc = reward = win = entropy = mode = outside = 0.0
    for p, q, r, w, t in zip(probs, baseline, rewards, windows, truth, strict=True):
        acc += sum(pa for pa, a in zip(p, w) if a == t)
        reward += sum(pa * ra for pa, ra in zip(p, r))
        win += win_probability(p, q, r)
        entropy -= sum(pa * math.log(pa) for pa in p if pa > 0)
        mode += bool(p) and w[max(range(len(p)), key=p.__getitem__)] == t
        outside += max(0.0, 1 - sum(p))
    return {
        "exact_accuracy": acc / n,
        "exact_gold_reward": reward / n,
        "exact_win_rate_vs_sft": win / n,
        "exact_entropy": entropy / n,
        "exact_mode_correct": mode / n,
        "exact_mass_outside": outside / n,
    }
