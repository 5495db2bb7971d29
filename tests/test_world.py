"""The embedded arithmetic world: tokenizer, judge, SFT, and the from_pretrained round trip."""

import math
import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from larpo.models.policy import build_tiny_llama, load_policy
from larpo.sequences import collate, encode_prompt, encode_response
from larpo.worlds.arithmetic import ArithmeticTask, build_tokenizer, judge, parse_answer, true_answer


def sft_stage(cfg):
    """The world's SFT stage as the data option builds it (its `Source.sft`)."""
    from hydra.utils import instantiate

    from larpo.config.schema import component

    return instantiate(component(cfg.data, "data"))(prompts_per_iteration=1, seed=cfg.seed).sft


def test_tokenizer_round_trip_through_save_pretrained(tmp_path):
    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in ["37+48=", "0*9=", "12-99=-87"]:
        ids = loaded(text)["input_ids"]
        assert ids[0] == loaded.bos_token_id and len(ids) == len(text) + 1  # one token per character
        assert ids == tok(text)["input_ids"]
        assert loaded.decode(ids, skip_special_tokens=True) == text
    batch = loaded(["1+2=", "37+48="], padding=True)
    assert batch["input_ids"][0][:2] == [loaded.pad_token_id] * 2  # left padding for generation


def test_prompts_and_true_answers():
    task = ArithmeticTask(ops="+-*", max_digits=2)
    prompts = task.prompts(300, seed=3)
    assert prompts == task.prompts(300, seed=3)  # seeded
    assert {p.rstrip("=").lstrip("0123456789")[0] for p in prompts} == {"+", "-", "*"}
    assert len({len(p) for p in prompts}) > 2  # operand sizes mix
    assert true_answer("37+48=") == 85 and true_answer("3-48=") == -45 and true_answer("12*11=") == 132
    held_out = set(prompts[:50])
    assert not held_out & set(task.prompts(500, seed=4, exclude=held_out))


def test_judge_scores_closeness():
    assert judge("37+48=", "85") == 1.0
    assert judge("37+48=", "84") == judge("37+48=", "86") == 0.5
    assert judge("37+48=", "95") == pytest.approx(1 / 11)
    assert judge("37+48=", "") == judge("37+48=", "8-5") == judge("37+48=", "+=") == 0.0
    assert judge("37+48=", "185") > judge("37+48=", "x")  # far, but parsable, beats unparsable
    assert parse_answer("-12") == -12 and parse_answer("1-2") is None


def test_noisy_targets_are_noisy_and_near():
    task, rng = ArithmeticTask(noise=0.3, noise_scale=10), random.Random(0)
    prompts = task.prompts(2000, seed=0)
    errors = [int(task.noisy_target(p, rng)) - true_answer(p) for p in prompts]
    share = sum(e != 0 for e in errors) / len(errors)
    assert 0.27 < share < 0.33 and max(abs(e) for e in errors) <= 10


def _response_nll(model, tok, prompts, task):
    rng = random.Random(1)
    seqs = [(encode_prompt(tok, p), encode_response(tok, task.noisy_target(p, rng))) for p in prompts]
    batch = collate(seqs, tok.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mask = batch["response_mask"][:, 1:]
    return torch.nn.functional.cross_entropy(logits[:, :-1][mask], batch["input_ids"][:, 1:][mask]).item()


def test_tiny_sft_lowers_the_loss_and_round_trips(micro):
    cfg = micro()
    path = sft_stage(cfg)(cfg.model, cfg.seed, progress=False)
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert sft_stage(cfg)(cfg.model, cfg.seed, progress=False) == path  # cached: same key, same directory
    model, tok = load_policy(str(path))
    task = sft_stage(cfg).task
    prompts = task.prompts(64, seed=99)
    untrained = build_tiny_llama(tok, seed=cfg.seed, **cfg.model.arch)
    before, after = _response_nll(untrained, tok, prompts, task), _response_nll(model, tok, prompts, task)
    assert after < 0.8 * before

    # save/from_pretrained round trip gives identical logits
    model.save_pretrained(path.parent / "copy")
    copy = AutoModelForCausalLM.from_pretrained(path.parent / "copy")
    ids = tok(prompts[:8], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**ids).logits, copy(**ids).logits)


def test_changed_sft_knob_gives_a_new_cache_entry(micro):
    a, b = micro(), micro("model.sft.lr=1e-3")
    assert sft_stage(a).key(a.model, a.seed) != sft_stage(b).key(b.model, b.seed)
    assert sft_stage(a).key(a.model, a.seed) == sft_stage(micro()).key(micro().model, 0)


def test_eval_prompts_knob_shrinks_evaluation_without_touching_sft(micro):
    a, b = micro(), micro("eval.prompts=5")
    assert sft_stage(a).key(a.model, a.seed) == sft_stage(b).key(b.model, b.seed)


def test_validation_split_is_disjoint_from_the_test_prompts_and_leaves_sft_alone(micro):
    from larpo.evaluation.evaluator import SplitEvaluator
    from larpo.run.build import build
    from larpo.run.fit import fit

    plain, split = micro("iterations=1"), micro("iterations=1", "eval.validation=0.3")
    assert sft_stage(plain).key(plain.model, 0) == sft_stage(split).key(split.model, 0)
    held_out = build(plain).loop.evaluator.prompts
    r = build(split)
    ev = r.loop.evaluator
    assert len(held_out) == 20 and isinstance(ev, SplitEvaluator)
    assert ev.validation.prompts == held_out[:6] and ev.test.prompts == held_out[6:]  # round(0.3 * 20)
    final = fit(r)["final"]
    assert {"win_rate_vs_sft", "val_win_rate_vs_sft", "accuracy_greedy", "val_accuracy_greedy"} <= set(final)
    # each split's greedy accuracy is a count over its own prompts: 14 test, 6 validation
    assert final["accuracy_greedy"] * 14 == pytest.approx(round(final["accuracy_greedy"] * 14), abs=1e-9)
    assert final["val_accuracy_greedy"] * 6 == pytest.approx(round(final["val_accuracy_greedy"] * 6), abs=1e-9)


def test_validation_share_must_leave_test_prompts(micro):
    from larpo.config.rules import check
    from larpo.fields import ConfigError

    with pytest.raises(ConfigError, match=r"eval.prompts=15: more than the 14 held-out test prompts"):
        check(micro("eval.validation=0.3", "eval.prompts=15"))
    with pytest.raises(ConfigError, match=r"eval.validation=0.99: leaves no test prompt of the 20"):
        check(micro("eval.validation=0.99"))
    check(micro("eval.validation=0.3", "eval.prompts=14"))


def test_exact_evaluation_agrees_with_sampling_on_an_untrained_and_a_trained_policy(micro):
    """exact_accuracy is P(truth) averaged over prompts; 200 samples per prompt estimate it with a
    known standard error. The exact gold reward leaves out the mass outside truth ± 20, whose
    answers earn at most 1/22: the sampled mean lies between the two bounds (within error)."""
    from larpo.evaluation.exact import ExactEvaluator
    from larpo.generation.hf import HFGenerator
    from larpo.run.build import build
    from larpo.run.fit import fit
    from larpo.worlds.arithmetic.task import reference, window

    r = build(micro("iterations=1", "epochs_per_iteration=3", "lr=1e-3"))
    fit(r)
    sft, tok = load_policy(r.loop.reference.initial_path)
    prompts, k = r.loop.evaluator.prompts, 200
    exact = ExactEvaluator(prompts, judge, reference, window)
    for model in (sft, r.module.policy):
        m = exact(model, tok)
        samples = HFGenerator(progress=False)(model, tok, prompts, k, 1.0, seed=5)
        rewards = [[judge(p, s) for s in ss] for p, ss in zip(prompts, samples)]
        sampled_acc = sum(x == 1.0 for rs in rewards for x in rs) / (len(prompts) * k)
        per_prompt = [sum(x == 1.0 for x in rs) / k for rs in rewards]
        se = math.sqrt(sum(p * (1 - p) for p in per_prompt) / k) / len(prompts) + 1e-3
        assert abs(sampled_acc - m["exact_accuracy"]) < 4 * se, (sampled_acc, m["exact_accuracy"], se)
        sampled_reward = sum(map(sum, rewards)) / (len(prompts) * k)
        upper = m["exact_gold_reward"] + m["exact_mass_outside"] / 22
        assert m["exact_gold_reward"] - 0.03 < sampled_reward < upper + 0.03
