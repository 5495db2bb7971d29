"""Held-out evaluation by the gold judge: the policy as a generator and as a retriever.

Never uses the training reward model. Metrics (docs/formats.md): win_rate_vs_sft, gold_reward,
accuracy_greedy, accuracy_sampled, pass_at_1..k (Recall@N), ndcg, ranking_accuracy.
"""

from __future__ import annotations

import math

from larpo.evaluation.list_stats import duel_statistics
from larpo.generation.contract import Cut
from larpo.sequences import encode_prompt, encode_response, sequence_logps, unflatten


def pass_at(correct: list[list[bool]], n: int) -> float:
    """Recall@n of the policy as a retriever: share of prompts with a correct answer in n samples."""
    return sum(any(c[:n]) for c in correct) / max(1, len(correct))


def response_tokens(tokenizer, sampled: list[list[str]]) -> float:
    """The sampled answers' mean length in policy tokens (a policy learning to answer longer or
    shorter shows here)."""
    flat = [r for rs in sampled for r in rs]
    lengths = [len(ids) for ids in tokenizer(flat, add_special_tokens=False)["input_ids"]] if flat else []
    return sum(lengths) / max(1, len(lengths))


def win_rate(rewards: list[list[float]], baseline: list[list[float]]) -> float:
    """Share of (prompt, sample i) duels the policy wins against the baseline; ties count half."""
    duels = [
        (a > b) + 0.5 * (a == b) for ra, rb in zip(rewards, baseline, strict=True) for a, b in zip(ra, rb, strict=True)
    ]
    return sum(duels) / max(1, len(duels))


def wrong_reward(rewards: list[list[float]]) -> float | None:
    """Mean gold reward of the wrong samples: how close the policy's mistakes come (None: none wrong)."""
    wrong = [x for rs in rewards for x in rs if x < 1.0]
    return sum(wrong) / len(wrong) if wrong else None


def ndcg(scores: list[float], gains: list[float]) -> float | None:
    """NDCG of the order given by `scores` against graded `gains`; None when no gain is positive."""
    discount = [1 / math.log2(i + 2) for i in range(len(gains))]
    ideal = sum(g * d for g, d in zip(sorted(gains, reverse=True), discount))
    if ideal <= 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return sum(gains[i] * d for i, d in zip(order, discount)) / ideal


def ranking_accuracy(scores: list[float], gains: list[float]) -> tuple[int, int]:
    """(correctly ordered, judged) pairs: pairs the judge strictly orders, ordered the same way."""
    good = total = 0
    for i in range(len(gains)):
        for j in range(len(gains)):
            if gains[i] > gains[j]:
                total += 1
                good += scores[i] > scores[j]
    return good, total


def candidate_logps(
    model, tokenizer, prompts: list[str], candidates: list[list[str]], tokens: int = 4096
) -> list[list[float]]:
    """Summed log-probs of every candidate under `model`, in the lists' layout."""
    seqs = [
        (encode_prompt(tokenizer, p), encode_response(tokenizer, r))
        for p, rs in zip(prompts, candidates, strict=True)
        for r in rs
    ]
    return unflatten(sequence_logps(model, seqs, tokenizer.pad_token_id, tokens), candidates)


class Evaluator:
    """Evaluates a policy on held-out prompts against the SFT policy's answers.

    `set_baseline` is called once with the SFT policy: its samples are the opponents of the win
    rate, and its distinct samples plus the reference answer form the judged candidate lists on
    which NDCG and ranking accuracy test the policy's own likelihoods.
    """

    def __init__(
        self,
        prompts: list[str],
        judge,
        reference,
        generator,
        k: int,
        temperature: float,
        seed: int,
        exact=None,
        tokens: int = 4096,
        ranking: bool = True,
    ):
        """`exact`: an `ExactEvaluator` over the same prompts, whose `exact_*` metrics join these;
        `tokens`: the token budget of a log-prob forward pass (`score_tokens`)."""
        self.prompts, self.judge, self.reference, self.tokens = prompts, judge, reference, tokens
        self.ranking = ranking  # ndcg and ranking_accuracy: one more log-prob pass (`eval.ranking`)
        self.generator, self.k, self.temperature, self.seed = generator, k, temperature, seed
        self.exact = exact
        self.baseline_rewards: list[list[float]] | None = None
        self.judged_lists: list[list[str]] = []

    def _sampled(self, model, tokenizer) -> list[list[str]]:
        return self.generator(model, tokenizer, self.prompts, self.k, self.temperature, self.seed, desc="eval sample")

    def _greedy_and_sampled(self, model, tokenizer) -> tuple[list[str], list[list[str]]]:
        """Each prompt's greedy answer and its k samples: in one pass where the generator can
        (`with_greedy`: each prompt through the model once for both), else two."""
        if hasattr(self.generator, "with_greedy"):
            return self.generator.with_greedy(
                model, tokenizer, self.prompts, self.k, self.temperature, self.seed, desc="eval"
            )
        greedy = [r[0] for r in self.generator(model, tokenizer, self.prompts, 1, 0.0, self.seed, desc="eval greedy")]
        return greedy, self._sampled(model, tokenizer)

    def set_baseline(self, model, tokenizer, sampled: list[list[str]] | None = None) -> None:
        """Make `model` (the SFT policy) the opponent of the win rate and the source of the judged
        lists. Sampling is seeded, so a resumed run rebuilds the same baseline."""
        sampled = sampled if sampled is not None else self._sampled(model, tokenizer)
        if self.exact is not None:
            self.exact.set_baseline(model, tokenizer)
        self.baseline_rewards = [[self.judge(p, r) for r in rs] for p, rs in zip(self.prompts, sampled, strict=True)]
        self.judged_lists = []
        for p, rs in zip(self.prompts, sampled, strict=True):
            ref = self.reference(p)
            self.judged_lists.append(list(dict.fromkeys(([ref] if ref else []) + rs)))

    def state(self) -> dict:
        """The baseline as plain data (the SFT policy's rewards, judged lists and exact
        distribution): what later evaluations need of it, so a cached SFT evaluation restores it."""
        exact = self.exact.baseline if self.exact is not None else None
        return {"baseline_rewards": self.baseline_rewards, "judged_lists": self.judged_lists, "exact": exact}

    def load_state(self, state: dict) -> None:
        self.baseline_rewards, self.judged_lists = state["baseline_rewards"], state["judged_lists"]
        if self.exact is not None:
            self.exact.baseline = state["exact"]

    def __call__(self, model, tokenizer) -> dict[str, float]:
        """Metrics of `model`; the first model evaluated becomes the baseline if none is set."""
        if self.exact is not None:
            self.exact.forget()  # the weights may have changed since the last evaluation
        greedy, sampled = self._greedy_and_sampled(model, tokenizer)
        if self.baseline_rewards is None:
            self.set_baseline(model, tokenizer, sampled)
        rewards = [[self.judge(p, r) for r in rs] for p, rs in zip(self.prompts, sampled, strict=True)]
        correct = [[x == 1.0 for x in rs] for rs in rewards]
        n = len(self.prompts)
        out = {
            "win_rate_vs_sft": win_rate(rewards, self.baseline_rewards),
            "gold_reward": sum(map(sum, rewards)) / (n * self.k),
            "accuracy_greedy": sum(self.judge(p, g) == 1.0 for p, g in zip(self.prompts, greedy)) / n,
            "accuracy_sampled": sum(map(sum, correct)) / (n * self.k),
            "distinct_answers": sum(len(set(rs)) for rs in sampled) / n,
            "wrong_vs_wrong_duels": duel_statistics(rewards, self.baseline_rewards),
            "wrong_reward": wrong_reward(rewards),
            "truncated": sum(isinstance(r, Cut) for rs in sampled for r in rs) / (n * self.k),  # cut at the cap
            "response_tokens": response_tokens(tokenizer, sampled),
        }
        out.update({f"pass_at_{i}": pass_at(correct, i) for i in range(1, self.k + 1)})
        if self.ranking:
            out.update(self._ranking(model, tokenizer))
        if self.exact is not None:
            out.update(self.exact(model, tokenizer))
        return out

    def sharpened(self, model, tokenizer, temperature: float) -> dict[str, float]:
        """The sharpening-only control: `model` (the SFT policy) sampled at `temperature` (0:
        greedy), no training, against the baseline's samples at the evaluation temperature."""
        if temperature == 0:  # every sample is the greedy answer: decode it once
            greedy = self.generator(model, tokenizer, self.prompts, 1, 0.0, self.seed, desc="eval sharpened")
            sampled = [rs * self.k for rs in greedy]
        else:
            sampled = self.generator(
                model, tokenizer, self.prompts, self.k, temperature, self.seed, desc="eval sharpened"
            )
        rewards = [[self.judge(p, r) for r in rs] for p, rs in zip(self.prompts, sampled, strict=True)]
        n = len(self.prompts)
        out = {
            "win_rate_vs_sft": win_rate(rewards, self.baseline_rewards),
            "gold_reward": sum(map(sum, rewards)) / (n * self.k),
            "accuracy_sampled": sum(x == 1.0 for rs in rewards for x in rs) / (n * self.k),
        }
        if self.exact is not None:
            out.update(self.exact(model, tokenizer, temperature=temperature))
        return out

    def _ranking(self, model, tokenizer) -> dict[str, float]:
        scores = candidate_logps(model, tokenizer, self.prompts, self.judged_lists, self.tokens)
        ndcgs, good, total = [], 0, 0
        for p, cands, s in zip(self.prompts, self.judged_lists, scores, strict=True):
            gains = [self.judge(p, c) for c in cands]
            value = ndcg(s, gains)
            if value is not None:
                ndcgs.append(value)
            g, t = ranking_accuracy(s, gains)
            good, total = good + g, total + t
        return {"ndcg": sum(ndcgs) / max(1, len(ndcgs)), "ranking_accuracy": good / max(1, total)}


class SplitEvaluator:
    """Two evaluators over disjoint held-out prompts: the test split's metrics under their own
    names, the validation split's as `val_<name>`. Hyperparameters are chosen on `val_*` (e.g.
    `report.tune`), and reported on the test metrics, which the choice never saw."""

    def __init__(self, test: Evaluator, validation: Evaluator):
        self.test, self.validation = test, validation
        self.k = test.k

    def set_baseline(self, model, tokenizer) -> None:
        self.test.set_baseline(model, tokenizer)
        self.validation.set_baseline(model, tokenizer)

    @property
    def prompts(self) -> list[str]:
        return self.test.prompts + self.validation.prompts

    def state(self) -> dict:
        return {"test": self.test.state(), "validation": self.validation.state()}

    def load_state(self, state: dict) -> None:
        self.test.load_state(state["test"])
        self.validation.load_state(state["validation"])

    def __call__(self, model, tokenizer) -> dict[str, float]:
        val = self.validation(model, tokenizer)
        return self.test(model, tokenizer) | {f"val_{k}": v for k, v in val.items()}

    def sharpened(self, model, tokenizer, temperature: float) -> dict[str, float]:
        val = self.validation.sharpened(model, tokenizer, temperature)
        return self.test.sharpened(model, tokenizer, temperature) | {f"val_{k}": v for k, v in val.items()}


def policy_metrics(
    model, tokenizer, prompts: list[str], generator, temperature: float, k: int, seed: int, judge, reference
) -> dict[str, float]:
    """One-off metrics of a single policy (its own baseline, so the win rate is 0.5)."""
    return Evaluator(prompts, judge, reference, generator, k, temperature, seed)(model, tokenizer)
