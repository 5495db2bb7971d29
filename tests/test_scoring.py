"""Bounded memory for scoring: log-prob and reward forward passes batch by a token budget, and the
budget changes no score."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import larpo.sequences
from larpo.rewards.classifier import SequenceClassifierReward
from larpo.sequences import collate, response_logps, sequence_logps, token_batches


@pytest.mark.parametrize("tokens,rows", [(12, None), (40, None), (40, 3), (1000, None)])
def test_token_batches_hold_the_budget_and_every_sequence_once(tokens, rows):
    lengths = [5, 17, 3, 3, 9, 30, 1, 12, 8, 8, 2]
    batches = token_batches(lengths, tokens, rows)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        padded = len(b) * max(lengths[i] for i in b)
        assert padded <= tokens or len(b) == 1  # a sequence over the budget goes alone
        assert rows is None or len(b) <= rows
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)  # shortest first: little padding
    if tokens == 12:
        assert [[lengths[i] for i in b] for b in batches] == [[1, 2, 3, 3], [5], [8], [8], [9], [12], [17], [30]]


def plain_logps(model, seqs):
    """One sequence at a time, float64 log-softmax over the whole vocabulary."""
    out = []
    for p, r in seqs:
        ids = torch.tensor([p + r])
        logits = model(input_ids=ids).logits[0, :-1].double()
        logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        out.append(float(logp[len(p) - 1 :].sum()))
    return out


@pytest.fixture(scope="module")
def policy(tiny_hub):
    return AutoModelForCausalLM.from_pretrained(tiny_hub["policy"]).eval(), AutoTokenizer.from_pretrained(
        tiny_hub["policy"]
    )


def sequences(tokenizer):
    texts = [("What is 2+2?", "4"), ("Name a colour.", "A deep shade of blue"), ("Hi", ""), ("Count", "1 2 3 4 5 6")]
    return [(tokenizer(p)["input_ids"], tokenizer(r, add_special_tokens=False)["input_ids"] + [2]) for p, r in texts]


def test_token_budget_gives_the_log_probs_of_one_batch(policy):
    model, tokenizer = policy
    seqs = sequences(tokenizer) * 3
    whole = sequence_logps(model, seqs, tokenizer.pad_token_id, tokens=10**9)  # one batch
    budget = sequence_logps(model, seqs, tokenizer.pad_token_id, tokens=16)  # one sequence a batch
    middle = sequence_logps(model, seqs, tokenizer.pad_token_id, tokens=64)
    assert whole == pytest.approx(plain_logps(model, seqs), abs=1e-4)
    assert budget == pytest.approx(whole, abs=1e-5) and middle == pytest.approx(whole, abs=1e-5)
    assert len(set(round(x, 3) for x in whole)) == 4  # four different sequences, not one value


def test_logits_are_converted_a_few_rows_at_a_time(policy, monkeypatch):
    model, tokenizer = policy
    batch = collate(sequences(tokenizer), tokenizer.pad_token_id)
    at_once = response_logps(model, batch, temperature=0.7)
    monkeypatch.setattr(larpo.sequences, "LOGIT_ELEMENTS", 1)  # one row per chunk
    assert response_logps(model, batch, temperature=0.7).tolist() == pytest.approx(at_once.tolist(), abs=1e-6)


def test_reward_model_scores_do_not_depend_on_the_budget(tiny_hub):
    prompts = ["What is 2+2?", "Name a colour."]
    candidates = [["4", "five", "It is four, of course"], ["blue", "a very deep shade of crimson red"]]
    whole = SequenceClassifierReward(tiny_hub["reward"], tokens=10**9).score(prompts, candidates)
    small = SequenceClassifierReward(tiny_hub["reward"], tokens=16, batch_size=2).score(prompts, candidates)
    assert [len(x) for x in small] == [3, 2]
    assert sum(small, []) == pytest.approx(sum(whole, []), abs=1e-5)
    assert len({round(x, 4) for x in sum(whole, [])}) == 5
