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
from collections.abc import Callable

from larpo.run.evaluation import sequence_logps
from larpo.sequences import encode_prompt, encode_response


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
        seqs = [
            (encode_prompt(tokenizer, p), encode_response(tokenizer, a))
            for p, w in zip(self.prompts, self.windows, strict=True)
            for a in w
        ]
        t = temperature if temperature > 0 else 1.0
        flat = [math.exp(lp) for lp in sequence_logps(model, seqs, tokenizer.pad_token_id, temperature=t)]
        out, i = [], 0
        for w in self.windows:
            probs = flat[i : i + len(w)]
            i += len(w)
            out.append(probs)
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
