"""The digits world, list statistics, the exact evaluation and held-out prompts."""

import math
import random
from types import SimpleNamespace

import pytest
import torch
from helpers.fakes import candidate_list

from larpo.evaluation.exact import ExactEvaluator, exact_metrics, win_probability
from larpo.evaluation.list_stats import duel_statistics, list_statistics
from larpo.worlds.arithmetic.task import ArithmeticTask
from larpo.worlds.arithmetic.task import held_out as arithmetic_held_out
from larpo.worlds.digits.source import digits
from larpo.worlds.digits.task import DigitsTask, add_with_slips, judge, window

# --- the judge and the noise --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reward"),
    [
        ("5758", 1.0),  # 4821 + 937
        ("5748", 0.875),  # tens one off (a dropped carry would do this): 3 + 0.5 of 4
        ("5738", 0.75),  # tens two off: 3 of 4
        ("4758", 0.875),  # thousands one off
        ("5768", 0.875),  # one too many: off by one, mod 10
        ("758", 0.75),  # a digit missing: 3 of the 4 positions
        ("15758", 0.8),  # a digit too many: 4 of the 5 positions
        ("5", 0.0),  # 8 vs 5 at the units, nothing else
        ("05758", 0.0),  # a leading zero is malformed
        ("57a8", 0.0),
        ("", 0.0),
    ],
)
def test_the_judge_gives_per_digit_credit(response, reward):
    assert judge("4821+937=", response) == pytest.approx(reward)


def test_digits_one_off_across_zero_get_half_credit():
    assert judge("5+5=", "19") == pytest.approx(0.75)  # 1 right, 9 against 0 one off (mod 10)
    assert judge("5+5=", "10") == 1.0 and judge("5+5=", "11") == pytest.approx(0.75)
    assert judge("5+5=", "13") == pytest.approx(0.5)


def test_adding_with_dropped_carries_and_slips():
    assert add_with_slips(4821, 937, [False] * 5, {}) == "5758"
    assert add_with_slips(199, 1, [True, False, False, False], {}) == "190"  # the units carry forgotten
    assert add_with_slips(199, 1, [False, True, False, False], {}) == "100"  # the tens carry forgotten
    assert add_with_slips(999, 1, [False, False, True, False], {}) == "0"  # the last carry forgotten
    assert add_with_slips(4821, 937, [False] * 5, {0: 2}) == "5752"


def test_sft_targets_drop_the_first_carry_more_often_than_not():
    task, rng = DigitsTask(first_carry_drop=0.6, carry_drop=0.0, slip=0.0), random.Random(0)
    with_carry = [p for p in task.prompts(3000, seed=1) if sum(int(x[-1]) for x in p[:-1].split("+")) >= 10]
    wrong = sum(judge(p, task.noisy_target(p, rng)) < 1 for p in with_carry) / len(with_carry)
    assert 0.57 < wrong < 0.63
    noisy = DigitsTask(first_carry_drop=0.0, carry_drop=0.0, slip=0.1)
    targets = [(p, noisy.noisy_target(p, rng)) for p in noisy.prompts(3000, seed=2)]
    per_digit = sum(1 - judge(p, t) for p, t in targets) / len(targets)  # slips: ~0.1 of a digit's credit each
    assert 0.06 < per_digit < 0.1


def test_the_window_holds_the_truth_and_the_worlds_mistakes():
    w = window("199+1=")
    assert w[0] == "200" and {"190", "100", "201", "290"} <= set(w) and len(w) == len(set(w))
    assert all(not a.startswith("0") or a == "0" for a in w)


# --- held-out prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", [ArithmeticTask(ops="+", max_digits=2), DigitsTask()])
def test_held_out_prompts_are_distinct_and_never_trained_on(task):
    if isinstance(task, DigitsTask):
        source = digits(task, prompts_per_iteration=2048, eval_prompts=1000, eval_seed=12345, seed=0)
        held, train = source.eval, source.train
    else:
        from larpo.worlds.arithmetic.source import arithmetic

        source = arithmetic(task, prompts_per_iteration=2048, eval_prompts=1000, eval_seed=12345, seed=0)
        held, train = source.eval, source.train
        assert held == arithmetic_held_out(task, 1000, 12345)
    assert len(held) == len(set(held)) == 1000
    assert len(train) == len(set(train)) == 2048  # distinct within an iteration
    assert not set(held) & set(train)
    assert set(source.sft.held_out) == set(held)  # SFT excludes exactly the held-out pool
    validation, test = held[:300], held[300:]  # eval.validation=0.3
    assert not set(validation) & set(test)


# --- list statistics ----------------------------------------------------------------------------


def test_list_statistics_on_constructed_lists():
    pool = [
        candidate_list("1+1=", ["2", "3", "4", "9"], [1.0, 0.5, 0.33, 0.1]),  # 4 levels, top right
        candidate_list("2+2=", ["5", "3", "6"], [0.5, 0.5, 0.33]),  # 2 levels, top wrong
        candidate_list("3+3=", ["7", "5"], [0.5, 0.5]),  # a tied pair: dropped
        candidate_list("4+4=", ["8", "9"], [1.0, 0.5]),  # a single pair
    ]
    stats = list_statistics(pool, kept=3, judge=lambda p, r: float(r == str(2 * int(p[0]))))
    assert stats["levels"] == {"1": 0.25, "2": 0.5, "4": 0.25}
    assert stats["three_levels"] == 0.25 and stats["dropped"] == 0.25 and stats["single_pair"] == 0.5
    assert stats["top_correct"] == 0.5 and stats["mean_size"] == 2.75 and stats["count"] == 4
    assert stats["top_not_best"] == 0.0
    assert "top_correct" not in list_statistics(pool, kept=3)
    misranked = [candidate_list("4+4=", ["9", "8"], [0.9, 0.1])]  # the reward model prefers a wrong answer
    assert list_statistics(misranked, kept=1, judge=lambda p, r: float(r == "8"))["top_not_best"] == 1.0


def test_wrong_vs_wrong_duels_count_pairs_of_wrong_answers():
    assert duel_statistics([[1.0, 0.5, 0.2]], [[0.5, 0.3, 1.0]]) == pytest.approx(1 / 3)


# --- the exact evaluation -----------------------------------------------------------------------


class TablePolicy(torch.nn.Module):
    """A policy whose answer distribution is known: after the prompt it says "3" or "4" with
    probabilities p3, p4 (the rest of the mass goes to "5"), then ends (EOS)."""

    def __init__(self, tokenizer, p3: float, p4: float):
        super().__init__()
        self.tok, self.dummy = tokenizer, torch.nn.Parameter(torch.zeros(1))
        vocab = len(tokenizer.get_vocab())
        first = torch.full((vocab,), -1e9)
        for d, p in (("3", p3), ("4", p4), ("5", 1 - p3 - p4)):
            first[tokenizer.convert_tokens_to_ids(d)] = math.log(p)
        self.first = first
        self.end = torch.full((vocab,), -1e9)
        self.end[tokenizer.eos_token_id] = 0.0

    @property
    def device(self):
        return self.dummy.device

    def forward(self, input_ids, attention_mask):
        logits = self.end.expand(*input_ids.shape, -1).clone()
        eq = self.tok.convert_tokens_to_ids("=")
        logits[input_ids == eq] = self.first  # the answer's first token follows "="
        return SimpleNamespace(logits=logits)


def test_exact_evaluation_of_a_policy_whose_distribution_is_known():
    from larpo.worlds.tokenizer import build_tokenizer

    tok = build_tokenizer()
    judge = lambda p, r: {"3": 1.0, "4": 0.5, "5": 0.25}.get(r, 0.0)  # noqa: E731
    ev = ExactEvaluator(["1+2="], judge, lambda p: "3", lambda p: ["3", "4"], temperature=1.0)
    ev.set_baseline(TablePolicy(tok, 0.2, 0.5), tok)  # SFT: 3 w.p. 0.2, 4 w.p. 0.5, 5 (outside) 0.3
    m = ev(TablePolicy(tok, 0.6, 0.3), tok)  # policy: 0.6, 0.3, outside 0.1
    assert m["exact_accuracy"] == pytest.approx(0.6)
    assert m["exact_gold_reward"] == pytest.approx(0.6 + 0.15)  # the outside mass counts 0
    assert m["exact_mass_outside"] == pytest.approx(0.1)
    assert m["exact_mode_correct"] == 1.0
    assert m["exact_entropy"] == pytest.approx(-(0.6 * math.log(0.6) + 0.3 * math.log(0.3)))
    # wins: 3>4, 3>out, 4>out; ties: 3=3, 4=4, out=out
    win = 0.6 * 0.5 + 0.6 * 0.3 + 0.3 * 0.3 + 0.5 * (0.6 * 0.2 + 0.3 * 0.5 + 0.1 * 0.3)
    assert m["exact_win_rate_vs_sft"] == pytest.approx(win)
    greedy = ev(TablePolicy(tok, 0.2, 0.5), tok, temperature=0.0)
    assert greedy["exact_accuracy"] == 0.0 and greedy["exact_gold_reward"] == 0.5 and greedy["exact_mass_outside"] == 0
    sharp = ev(TablePolicy(tok, 0.6, 0.3), tok, temperature=0.5)  # p^2 renormalised over 3, 4, 5
    assert sharp["exact_accuracy"] == pytest.approx(0.36 / (0.36 + 0.09 + 0.01))


def test_win_probability_of_a_policy_against_itself_is_one_half():
    p = [0.5, 0.2, 0.1]
    assert win_probability(p, p, [1.0, 0.5, 0.5]) == pytest.approx(0.5)
    assert exact_metrics([p], [p], [[1.0, 0.5, 0.5]], [["a", "b", "c"]], ["a"])[
        "exact_win_rate_vs_sft"
    ] == pytest.approx(0.5)


def test_a_digits_run_records_list_statistics_the_control_rows_and_exact_metrics(micro, tmp_path, capsys):
    from larpo.report.lists import main as lists_main
    from larpo.run.build import build
    from larpo.run.fit import fit

    summary = fit(build(micro("data=digits")))
    run_dir = tmp_path / "run"
    h0, h1, h2 = summary["history"]
    assert {"sft_T0_win_rate_vs_sft", "sft_T0.5_win_rate_vs_sft", "sft_T0_exact_accuracy"} <= set(h0)
    assert h0["sft_T0_accuracy_sampled"] == h0["accuracy_greedy"]  # at T=0 every sample is the greedy answer
    assert h0["exact_win_rate_vs_sft"] == pytest.approx(0.5) and 0 <= h0["wrong_vs_wrong_duels"] <= 1
    for s, h in ((1, h1), (2, h2)):
        stats = h["list_stats"]
        assert stats["count"] == 24 and sum(stats["levels"].values()) == pytest.approx(1.0)
        assert (run_dir / "pool" / f"iteration_{s}.stats.json").is_file()
    assert "list_stats" not in summary["final"] and "exact_accuracy" in summary["final"]
    lists_main([str(run_dir), "--gates"])
    out = capsys.readouterr().out
    assert "| 1 | 1 | " in out and "| 2 | 1 | " in out
    assert f"{h1['list_stats']['three_levels']:.3f}" in out.splitlines()[2]
    assert "SFT greedy accuracy (0.40-0.70)" in out


@pytest.mark.parametrize("world", ["arithmetic", "digits"])
def test_window_scoring_with_a_shared_prompt_cache_equals_scoring_each_pair(micro, world):
    """The exact evaluation runs each prompt once and shares its KV cache among the window's
    answers; every answer's log-prob equals scoring the (prompt, answer) pair whole, at T=1 and
    T=0.5, prompts of several token lengths batched by length, a batch smaller than one window."""
    from larpo.evaluation.exact import window_logps
    from larpo.models.policy import load_policy
    from larpo.run.build import build_source, initial_policy
    from larpo.sequences import encode_prompt, encode_response, sequence_logps

    cfg = micro(f"data={world}")
    source = build_source(cfg, 4)
    policy, tok = load_policy(initial_policy(cfg, source))
    prompts = source.eval[:12]
    assert len({len(encode_prompt(tok, p)) for p in prompts}) > 1
    windows = [list(dict.fromkeys(source.answers(p))) for p in prompts]
    pairs = [(encode_prompt(tok, p), encode_response(tok, a)) for p, w in zip(prompts, windows) for a in w]
    for t in (1.0, 0.5):
        whole = sequence_logps(policy, pairs, tok.pad_token_id, temperature=t)
        for rows in (2048, 7):
            shared = [x for row in window_logps(policy, tok, prompts, windows, temperature=t, rows=rows) for x in row]
            assert shared == pytest.approx(whole, abs=1e-4)
