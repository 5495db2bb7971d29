"""Held-out evaluation by a reward model, for data without a gold judge (`eval.judge`).

The policy's k samples per held-out prompt meet the SFT policy's k samples (drawn once, with the
same seed), every (policy sample, SFT sample) pair of a prompt judged by the reward model's scores.
Metrics, all prefixed `judge_` except the length ones:
- judge_win_rate_vs_sft: share of pairs whose policy sample scores higher (ties half);
- judge_lc_win_rate_vs_sft: the length-controlled win rate of AlpacaEval 2 (`lc_win_rate`);
- judge_score: the mean score of the policy's samples;
- response_tokens: their mean length in policy tokens; truncated: the share cut at the token cap.
"""

from __future__ import annotations

import math
import statistics

from larpo.generation.contract import Cut
from larpo.rewards.contract import RewardModel


def lc_win_rate(outcomes: list[float], length_differences: list[float], l2: float = 1e-4) -> float:
    """Length-controlled win rate in the manner of AlpacaEval 2 (Dubois et al. 2024, "Length-
    Controlled AlpacaEval", arXiv:2404.04475): fit the preference of each pair (1 win, 0.5 tie,
    0 loss) with a logistic model P(win) = sigmoid(theta + phi * tanh(d / sd(d))), d the length
    difference (policy minus baseline), by maximum likelihood (Newton's method, a small L2
    penalty on phi only, so that a fit stays finite when length separates wins from losses), and report
    sigmoid(theta): the win rate the model predicts at zero length difference. AlpacaEval's GLM
    also has an instruction-difficulty term, left out here (one baseline, its own prompts)."""
    if not outcomes:
        return math.nan
    sd = statistics.pstdev(length_differences) if len(length_differences) > 1 else 0.0
    xs = [math.tanh(d / sd) if sd > 0 else 0.0 for d in length_differences]
    theta = phi = 0.0
    for _ in range(100):
        g_t = g_p = h_tt = h_tp = h_pp = 0.0
        for y, x in zip(outcomes, xs, strict=True):
            p = 1 / (1 + math.exp(-(theta + phi * x)))
            w = p * (1 - p)
            g_t += y - p
            g_p += (y - p) * x
            h_tt, h_tp, h_pp = h_tt + w, h_tp + w * x, h_pp + w * x * x
        g_p -= l2 * len(xs) * phi
        h_pp += l2 * len(xs)
        det = h_tt * h_pp - h_tp * h_tp
        if det <= 0:
            break
        step_t, step_p = (h_pp * g_t - h_tp * g_p) / det, (h_tt * g_p - h_tp * g_t) / det
        theta, phi = theta + step_t, phi + step_p
        if abs(step_t) + abs(step_p) < 1e-10:
            break
    return 1 / (1 + math.exp(-theta))


class JudgeEvaluator:
    """Evaluation of a policy against the SFT policy by a reward model (`judge`), on `prompts`."""

    def __init__(self, prompts: list[str], judge: RewardModel, generator, k: int, temperature: float, seed: int):
        self.prompts, self.judge, self.generator = prompts, judge, generator
        self.k, self.temperature, self.seed = k, temperature, seed
        self.baseline: dict | None = None  # the SFT policy's scores and lengths

    def _samples(self, model, tokenizer, temperature: float) -> dict:
        sampled = self.generator(model, tokenizer, self.prompts, self.k, temperature, self.seed, desc="eval judged")
        scores = self.judge.score(self.prompts, sampled)
        lengths = [[len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in rs] for rs in sampled]
        cut = sum(isinstance(r, Cut) for rs in sampled for r in rs)
        return {
            "texts": [[str(r) for r in rs] for rs in sampled],
            "scores": scores,
            "lengths": lengths,
            "truncated": cut / max(1, len(self.prompts) * self.k),
        }

    def _together(self, mine: dict, baseline: dict) -> tuple[dict, dict]:
        """A list-relative judge (PairRM) scores each list against itself: the policy's and the
        SFT policy's samples of a prompt are scored as one list, so their scores compare."""
        both = self.judge.score(self.prompts, [a + b for a, b in zip(mine["texts"], baseline["texts"], strict=True)])
        k = self.k
        return {**mine, "scores": [s[:k] for s in both]}, {**baseline, "scores": [s[k:] for s in both]}

    def set_baseline(self, model, tokenizer) -> None:
        self.baseline = self._samples(model, tokenizer, self.temperature)

    def state(self) -> dict:
        return {"baseline": self.baseline}

    def load_state(self, state: dict) -> None:
        self.baseline = state["baseline"]

    def __call__(self, model, tokenizer, temperature: float | None = None) -> dict[str, float]:
        if self.baseline is None:
            self.set_baseline(model, tokenizer)
        mine = self._samples(model, tokenizer, self.temperature if temperature is None else temperature)
        baseline = self.baseline
        if getattr(self.judge, "list_relative", False):
            mine, baseline = self._together(mine, baseline)
        return judged_metrics(mine, baseline)

    def sharpened(self, model, tokenizer, temperature: float) -> dict[str, float]:
        return self(model, tokenizer, temperature)


def judged_metrics(mine: dict, baseline: dict) -> dict[str, float]:
    """Every (policy sample, baseline sample) pair of each prompt: its outcome and length difference."""
    outcomes, differences = [], []
    for s, b, ls, lb in zip(mine["scores"], baseline["scores"], mine["lengths"], baseline["lengths"], strict=True):
        for x, n in zip(s, ls, strict=True):
            for y, m in zip(b, lb, strict=True):
                outcomes.append(1.0 if x > y else 0.5 if x == y else 0.0)
                differences.append(n - m)
    flat_scores = [x for s in mine["scores"] for x in s]
    flat_lengths = [n for ls in mine["lengths"] for n in ls]
    return {
        "judge_win_rate_vs_sft": sum(outcomes) / max(1, len(outcomes)),
        "judge_lc_win_rate_vs_sft": lc_win_rate(outcomes, differences),
        "judge_score": sum(flat_scores) / max(1, len(flat_scores)),
        "response_tokens": sum(flat_lengths) / max(1, len(flat_lengths)),
        "truncated": mine["truncated"],
    }


class WithJudge:
    """The gold-judge evaluation and a reward model's, side by side (their metric names differ)."""

    def __init__(self, gold, judged: JudgeEvaluator):
        self.gold, self.judged, self.k = gold, judged, gold.k

    @property
    def prompts(self) -> list[str]:
        return self.gold.prompts

    def set_baseline(self, model, tokenizer) -> None:
        self.gold.set_baseline(model, tokenizer)
        self.judged.set_baseline(model, tokenizer)

    def state(self) -> dict:
        return {"gold": self.gold.state(), "by_reward_model": self.judged.state()}

    def load_state(self, state: dict) -> None:
        self.gold.load_state(state["gold"])
        self.judged.load_state(state["by_reward_model"])

    def __call__(self, model, tokenizer) -> dict[str, float]:
        return self.gold(model, tokenizer) | self.judged(model, tokenizer)

    def sharpened(self, model, tokenizer, temperature: float) -> dict[str, float]:
        return self.gold.sharpened(model, tokenizer, temperature) | self.judged.sharpened(model, tokenizer, temperature)
