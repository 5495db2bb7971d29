"""Reward models: the judge wrapper and the learned sequence-classifier reward model."""

import math

import pytest

from larpo.candidates import read_pool
from larpo.data.contract import Source
from larpo.rewards.classifier import SequenceClassifierReward
from larpo.rewards.contract import RewardContext
from larpo.rewards.judge import JudgeReward
from larpo.run.build import build
from larpo.run.fit import fit
from larpo.worlds.arithmetic import judge


def test_judge_reward_scores_lists():
    source = Source([], [], judge=judge)
    context = RewardContext(source, policy_path="", cache_dir="", seed=0, progress=False)
    scores = JudgeReward(context).score(["2+2=", "10+5="], [["4", "5", ""], ["15"]])
    assert scores == [[1.0, 0.5, 0.0], [1.0]]


def test_learned_reward_model_is_what_training_ranks_with(micro):
    r = build(micro("reward_model=learned", "reward_model.pairs=512", "iterations=1"))
    rm = r.loop.ranker.reward_model
    assert isinstance(rm, SequenceClassifierReward)
    assert rm.model.config.num_labels == 1 and rm.model.config.architectures[0].endswith("SequenceClassification")
    summary = fit(r)
    lists, _ = read_pool(__import__("pathlib").Path(summary["config"]["run_dir"]) / "pool" / "iteration_1.jsonl")
    fresh = rm.score([lst.prompt for lst in lists], [lst.responses for lst in lists])
    differs_from_judge = 0
    for lst, scores in zip(lists, fresh):
        assert all(math.isfinite(w) for w in lst.rewards)
        assert lst.rewards == pytest.approx(scores, abs=1e-5)  # the pool holds the RM's scores
        differs_from_judge += any(abs(w - judge(lst.prompt, x)) > 1e-3 for w, x in zip(lst.rewards, lst.responses))
    assert differs_from_judge == len(lists)  # not the judge in disguise
    # evaluation still uses the gold judge: the SFT policy against itself is exactly a tie
    assert summary["history"][0]["win_rate_vs_sft"] == 0.5


def test_the_noisy_judge_is_seeded_and_at_its_stated_level():
    from larpo.rewards.judge import NoisyJudgeReward

    source = Source(["1+1="], [], judge=lambda p, r: 1.0 if r == "2" else 0.5)
    context = lambda seed: RewardContext(source, "", "", seed, progress=False)  # noqa: E731
    answers = [str(i) for i in range(4000)]
    first = NoisyJudgeReward(0.2, context(0)).score(["1+1="], [answers])[0]
    again = NoisyJudgeReward(0.2, context(0)).score(["1+1="], [answers[::-1]])[0][::-1]
    assert first == again  # a candidate's noise does not depend on the list it is in
    noise = [w - (1.0 if a == "2" else 0.5) for w, a in zip(first, answers)]
    assert abs(sum(noise) / len(noise)) < 0.01 and 0.19 < (sum(x * x for x in noise) / len(noise)) ** 0.5 < 0.21
    other = NoisyJudgeReward(0.2, context(1)).score(["1+1="], [answers])[0]
    assert other != first  # another seed, other noise
    assert NoisyJudgeReward(0.0, context(0)).score(["1+1="], [["2", "3"]]) == [[1.0, 0.5]]
