"""Evaluation without a gold judge: a reward model judges the policy's held-out samples against
the SFT policy's, with AlpacaEval 2's length-controlled win rate."""

import math
import random

import pytest
from helpers.fakes import ScriptedGenerator, TableReward
from helpers.tiny_hub import char_tokenizer

from larpo.evaluation.judged import JudgeEvaluator, lc_win_rate


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def length_pairs(n: int, seed: int) -> list[float]:
    """Length differences (policy minus SFT) of n pairs, the policy longer in about 75% of them."""
    rng = random.Random(seed)
    return [rng.choice([1, 1, 1, -1]) * rng.randint(1, 40) for _ in range(n)]


def test_lc_win_rate_is_one_half_where_length_explains_every_preference():
    """Preferences that depend on the length difference alone (the policy is longer more often,
    so its raw win rate is far above 0.5): the length-controlled win rate is 0.5."""
    d = length_pairs(2000, 0)
    sd = (sum(x * x for x in d) / len(d) - (sum(d) / len(d)) ** 2) ** 0.5
    expected = [sigmoid(3 * math.tanh(x / sd)) for x in d]  # P(win) from length alone
    assert sum(expected) / len(expected) > 0.65
    assert lc_win_rate(expected, d) == pytest.approx(0.5, abs=0.002)
    rng = random.Random(1)
    drawn = [float(rng.random() < p) for p in expected]  # observed wins and losses
    assert sum(drawn) / len(drawn) > 0.65 and lc_win_rate(drawn, d) == pytest.approx(0.5, abs=0.03)


def test_lc_win_rate_keeps_a_preference_that_length_does_not_explain():
    d = length_pairs(2000, 2)
    rng = random.Random(3)
    wins = [float(rng.random() < 0.7) for _ in d]  # better 70% of the time, whatever its length
    assert lc_win_rate(wins, d) == pytest.approx(sum(wins) / len(wins), abs=0.02)
    # quality and a length bias together: the control removes the bias, not the quality
    sd = (sum(x * x for x in d) / len(d) - (sum(d) / len(d)) ** 2) ** 0.5
    both = [sigmoid(0.8 + 2 * math.tanh(x / sd)) for x in d]
    assert sum(both) / len(both) > 0.75 and lc_win_rate(both, d) == pytest.approx(sigmoid(0.8), abs=0.01)
    assert lc_win_rate([1.0, 0.5, 0.0, 1.0], [0, 0, 0, 0]) == pytest.approx(0.625, abs=1e-6)  # no length spread


def test_judge_evaluator_scores_every_pair_against_the_sft_samples():
    """Two prompts, k=2. SFT answers p: "ab", "abcd"; q: "x", "x". The policy answers p: "abc",
    "a"; q: "xyz", "x". The judge's scores are a table; lengths are characters (a character
    tokenizer), so every metric is computable by hand."""
    table = {("p", "ab"): 0.2, ("p", "abcd"): 0.6, ("p", "abc"): 0.7, ("p", "a"): 0.2}
    table |= {("q", "x"): 0.5, ("q", "xyz"): 0.9}
    sft = ScriptedGenerator({"p": ["ab", "abcd"], "q": ["x", "x"]})
    policy = ScriptedGenerator({"p": ["abc", "a"], "q": ["xyz", "x"]})
    tokenizer = char_tokenizer()
    ev = JudgeEvaluator(["p", "q"], TableReward(table), sft, k=2, temperature=1.0, seed=0)
    ev.set_baseline(None, tokenizer)
    same = ev(None, tokenizer)
    assert same["judge_win_rate_vs_sft"] == 0.5 and same["judge_lc_win_rate_vs_sft"] == pytest.approx(0.5, abs=1e-6)
    ev.generator = policy
    out = ev(None, tokenizer)
    # p: 0.7 beats 0.2 and 0.6; 0.2 ties 0.2, loses to 0.6 -> 2.5 of 4; q: 0.9 beats both, 0.5 ties both -> 3 of 4
    assert out["judge_win_rate_vs_sft"] == pytest.approx(5.5 / 8)
    assert out["judge_score"] == pytest.approx((0.7 + 0.2 + 0.9 + 0.5) / 4)
    assert out["response_tokens"] == pytest.approx((3 + 1 + 3 + 1) / 4) and out["truncated"] == 0
    assert 0 < out["judge_lc_win_rate_vs_sft"] < 1
    restored = JudgeEvaluator(["p", "q"], TableReward(table), policy, k=2, temperature=1.0, seed=0)
    restored.load_state(ev.state())  # the cached SFT evaluation gives the same metrics
    assert restored(None, tokenizer) == out


def test_a_run_reports_a_reward_models_judgement_beside_the_gold_judge(micro):
    """`reward_model@eval.judge=noisy_judge`: every evaluation has the judge_* metrics; the SFT
    policy against its own samples is exactly one half."""
    from larpo.run.build import build
    from larpo.run.fit import fit

    summary = fit(build(micro("reward_model@eval.judge=noisy_judge", "iterations=1", "eval.ranking=false")))
    first, last = summary["history"][0], summary["history"][-1]
    assert first["judge_win_rate_vs_sft"] == 0.5 and first["judge_lc_win_rate_vs_sft"] == pytest.approx(0.5, abs=1e-6)
    assert 0 <= last["judge_win_rate_vs_sft"] <= 1 and last["response_tokens"] > 0
    assert "win_rate_vs_sft" in last and "ndcg" not in last  # the gold judge too; no ranking pass


class RankInList:
    """A list-relative judge: a candidate's score is its rank by length within the list it came in."""

    list_relative = True

    def score(self, prompts, candidates):
        return [[float(sorted(map(len, rs)).index(len(r))) for r in rs] for rs in candidates]


def test_a_list_relative_judge_scores_policy_and_sft_samples_as_one_list():
    sft = ScriptedGenerator({"p": ["aa", "aaaa"]})
    policy = ScriptedGenerator({"p": ["aaa", "a"]})
    tokenizer = char_tokenizer()
    ev = JudgeEvaluator(["p"], RankInList(), sft, k=2, temperature=1.0, seed=0)
    ev.set_baseline(None, tokenizer)
    ev.generator = policy
    out = ev(None, tokenizer)
    # one list [aaa, a, aa, aaaa]: ranks 2, 0 vs 1, 3 -> aaa beats aa, loses to aaaa; a loses to both
    assert out["judge_win_rate_vs_sft"] == pytest.approx(1 / 4) and out["judge_score"] == pytest.approx(1.0)


def test_gold_evaluation_reports_accuracy_truncation_and_length():
    """The gold judge's evaluation, by hand: prompt "p" (answer "12"), the policy answers "12"
    greedily and "12", "7" (cut at the cap) sampled; prompt "q" (answer "3"): greedy "4", sampled
    "3", "3". Greedy accuracy 1/2, sampled 3/4, cut 1/4, length (2 + 1 + 1 + 1) / 4 characters."""
    from larpo.evaluation.evaluator import Evaluator
    from larpo.generation.contract import Cut

    class Answers(ScriptedGenerator):
        def __call__(self, model, tokenizer, prompts, k, temperature, seed, desc="generate", shard=(0, 1)):
            script = {"p": ["12"], "q": ["4"]} if temperature == 0 else {"p": ["12", Cut("7")], "q": ["3", "3"]}
            return [[script[p][j % len(script[p])] for j in range(k)] for p in prompts]

    gold = {"p": "12", "q": "3"}
    ev = Evaluator(
        ["p", "q"], lambda p, r: float(r == gold[p]), gold.get, Answers({}), k=2, temperature=1.0, seed=0, ranking=False
    )
    out = ev(None, char_tokenizer())
    assert out["accuracy_greedy"] == 0.5 and out["accuracy_sampled"] == 0.75
    assert out["truncated"] == 0.25 and out["response_tokens"] == pytest.approx(5 / 4)
