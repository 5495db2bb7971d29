"""GRPO and RLOO against plain per-candidate formulas (Python floats, explicit loops): the loss and
its gradient with respect to each candidate's summed log-prob, over ragged lists with ties and
garbage in the padding; then TRL 1.16's own loss code as a peer on the same batch (slow)."""

import math

import pytest
import torch
from test_objectives import random_batch, rows

from larpo import objectives
from larpo.objectives.policy_gradient import group_advantages, leave_one_out_advantages


def std(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mu = sum(xs) / len(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))


def plain_advantages(batch_rows, kind: str, scale: str = "group", normalize: bool = False) -> list[list[float]]:
    everything = [w for _, _, _, rw in batch_rows for w in rw]
    out = []
    for _, _, _, rw in batch_rows:
        n, mu = len(rw), sum(rw) / len(rw)
        if kind == "rloo":
            out.append([w - (sum(rw) - w) / (n - 1) for w in rw])
        elif scale == "group":
            out.append([(w - mu) / (std(rw) + 1e-4) for w in rw])
        elif scale == "batch":
            out.append([(w - mu) / (std(everything) + 1e-4) for w in rw])
        else:
            out.append([w - mu for w in rw])
    if normalize:
        flat = [a for adv in out for a in adv]
        mu, s = sum(flat) / len(flat), std(flat)
        out = [[(a - mu) / (s + 1e-4) for a in adv] for adv in out]
    return out


def surrogate(rho: float, a: float, eps: float, eps_high: float) -> tuple[float, float]:
    """-min(rho A, clip(rho) A) and its derivative in rho (0 where the clipped branch is the min)."""
    clip = min(max(rho, 1 - eps), 1 + eps_high)
    if rho * a <= clip * a:
        return -rho * a, -a
    return -clip * a, 0.0


def plain_grpo(batch_rows, scale="group", loss_type="dapo", eps=0.2, eps_high=None, level="token", max_len=None):
    """(loss, d loss / d logp per candidate). Per token of candidate i: -min(rho A, clip(rho) A)
    with rho = exp((S - S_old) / L), S_old = S at the token level (ratio 1), the reference's at
    the sequence level; the candidate's tokens sum to L times that."""
    eps_high = eps if eps_high is None else eps_high
    adv = plain_advantages(batch_rows, "grpo", scale)
    n = sum(len(r[0]) for r in batch_rows)
    tokens = sum(ln for _, _, lns, _ in batch_rows for ln in lns)
    loss, grads = 0.0, []
    for (lp, rf, ln, _), a_row in zip(batch_rows, adv):
        g_row = []
        for s, old, length, a in zip(lp, rf, ln, a_row):
            old = old if level == "sequence" else s
            rho = math.exp((s - old) / length)
            v, dv = surrogate(rho, a, eps, eps_high)
            d_sum = length * dv * rho / length  # d (L v) / dS
            if loss_type == "grpo":
                loss, d = loss + v / n, d_sum / length / n
            elif loss_type in ("bnpo", "dapo"):
                loss, d = loss + length * v / tokens, d_sum / tokens
            else:
                loss, d = loss + length * v / (n * max_len), d_sum / (n * max_len)
            g_row.append(d)
        grads.append(g_row)
    return loss, grads


def plain_rloo(batch_rows, eps=0.2, eps_high=None, normalize=False, use_old=False):
    eps_high = eps if eps_high is None else eps_high
    adv = plain_advantages(batch_rows, "rloo", normalize=normalize)
    n = sum(len(r[0]) for r in batch_rows)
    loss, grads = 0.0, []
    for (lp, rf, _, _), a_row in zip(batch_rows, adv):
        g_row = []
        for s, old, a in zip(lp, rf, a_row):
            rho = math.exp(s - (old if use_old else s))
            v, dv = surrogate(rho, a, eps, eps_high)
            loss += v / n
            g_row.append(dv * rho / n)
        grads.append(g_row)
    return loss, grads


def run(name, batch, with_ref, **hparams):
    logps, ref, mask, lengths, rewards = batch
    x = logps.clone().requires_grad_(True)
    obj = objectives.build(name, **hparams)
    loss = obj(x, ref if with_ref else None, mask, lengths, rewards)
    loss.backward()
    grads = [[float(x.grad[b, i]) for i in range(int(mask[b].sum()))] for b in range(mask.shape[0])]
    assert torch.all(x.grad[~mask] == 0)  # padding gets no gradient
    return float(loss), grads


def assert_close(got, expected):
    (loss, grads), (e_loss, e_grads) = got, expected
    assert loss == pytest.approx(e_loss, rel=1e-9, abs=1e-12)
    for g, e in zip(grads, e_grads, strict=True):
        assert g == pytest.approx(e, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_grpo_at_ratio_1_matches_the_plain_formula(seed, loss_type, scale_rewards):
    batch = random_batch(seed, scale=0.05)
    hp = {"loss_type": loss_type, "scale_rewards": scale_rewards, "max_completion_length": 9}
    got = run("grpo", batch, with_ref=True, **hp)  # token level: the reference is not the ratio's
    assert_close(got, plain_grpo(list(rows(*batch)), scale_rewards, loss_type, max_len=9))
    assert any(g != 0 for row in got[1] for g in row)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_grpo_at_the_sequence_level_clips_the_ratio_to_the_sampler(seed, loss_type):
    batch = random_batch(seed, scale=0.05)
    hp = {"loss_type": loss_type, "importance_sampling_level": "sequence", "epsilon": 0.01, "epsilon_high": 0.02}
    got = run("grpo", batch, with_ref=True, max_completion_length=9, **hp)
    plain = plain_grpo(list(rows(*batch)), "group", loss_type, 0.01, 0.02, "sequence", 9)
    assert_close(got, plain)
    # the clip binds somewhere, and somewhere it does not: both branches are checked
    flat = [g for row in got[1] for g in row]
    assert 0.0 in flat and any(g != 0 for g in flat)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("with_old", [False, True])
def test_rloo_matches_the_plain_formula(seed, normalize, with_old):
    batch = random_batch(seed, scale=0.02)
    got = run("rloo", batch, with_ref=with_old, normalize_advantages=normalize, epsilon=0.1)
    assert_close(got, plain_rloo(list(rows(*batch)), 0.1, normalize=normalize, use_old=with_old))


def test_advantages_of_an_all_tied_list_and_padding_are_zero():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 7.0], [1.0, 0.0, 0.0, -3.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False], [True, True, True, False]])
    for scale in ("group", "batch", "none"):
        a = group_advantages(rewards, mask, scale)
        assert torch.all(a[0] == 0) and torch.all(a[:, 3] == 0)
    assert group_advantages(rewards, mask, "none")[1].tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3, 0])
    assert leave_one_out_advantages(rewards, mask)[1].tolist() == pytest.approx([1.0, -0.5, -0.5, 0.0])
    assert torch.all(leave_one_out_advantages(rewards, mask)[0] == 0)


def test_an_all_tied_batch_has_no_gradient_and_any_order_is_the_same_group():
    logps = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    mask, lengths = torch.ones(2, 3, dtype=torch.bool), torch.tensor([[2, 3, 4], [1, 1, 5]])
    for name in ("grpo", "rloo"):
        obj = objectives.build(name)
        obj(logps, None, mask, lengths, torch.ones(2, 3)).backward()
        assert torch.all(logps.grad == 0)
        logps.grad = None
        rewards = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.9, 0.1]])
        perm = torch.tensor([2, 0, 1])  # GRPO's group has no order: best first or not, the same loss
        a = obj(logps, None, mask, lengths, rewards)
        b = obj(logps[:, perm], None, mask, lengths[:, perm], rewards[:, perm])
        assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_unknown_loss_type_or_scale_is_a_clear_error():
    batch = random_batch(0)
    with pytest.raises(ValueError, match="loss_type='gspo': use grpo, bnpo, dr_grpo or dapo"):
        objectives.build("grpo", loss_type="gspo")(*batch[:3], batch[3], batch[4])
    with pytest.raises(ValueError, match="scale_rewards='std': use group, batch or none"):
        objectives.build("grpo", scale_rewards="std")(*batch[:3], batch[3], batch[4])


# --- TRL 1.16's own loss code as the peer -------------------------------------------------------

LISTS = [  # prompt, 4 answers, rewards: one list tied, the others with spread
    ("1+1=", ["2", "3", "11", "2"], [1.0, 0.0, 0.0, 1.0]),
    ("7+5=", ["12", "13", "75", "1"], [1.0, 0.5, 0.0, 0.0]),
    ("9+9=", ["18", "18", "19", "81"], [1.0, 1.0, 1.0, 1.0]),
]


def trl_trainer(kind: str, model, tokenizer, tmp_path, **config):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    config_cls, trainer_cls = (GRPOConfig, GRPOTrainer) if kind == "grpo" else (RLOOConfig, RLOOTrainer)
    args = config_cls(
        output_dir=str(tmp_path / kind),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL's default autocasts to bf16; larpo's CPU trainer is 32-true
        **config,
    )
    trainer = trainer_cls(
        model=model,
        reward_funcs=lambda completions, **kw: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": [p for p, _, _ in LISTS]}),
        processing_class=tokenizer,
    )
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def trl_batch(tokenizer):
    """The lists as TRL lays them out: prompts left-padded, completions (with EOS) right-padded."""
    from larpo.sequences import encode_prompt, encode_response

    prompts = [encode_prompt(tokenizer, p) for p, rs, _ in LISTS for _ in rs]
    answers = [encode_response(tokenizer, r) for _, rs, _ in LISTS for r in rs]
    wide, long = max(map(len, prompts)), max(map(len, answers))
    pad = tokenizer.pad_token_id
    out = {
        "prompt_ids": torch.tensor([[pad] * (wide - len(p)) + p for p in prompts]),
        "prompt_mask": torch.tensor([[0] * (wide - len(p)) + [1] * len(p) for p in prompts]),
        "completion_ids": torch.tensor([a + [pad] * (long - len(a)) for a in answers]),
        "completion_mask": torch.tensor([[1] * len(a) + [0] * (long - len(a)) for a in answers]),
    }
    return out, prompts, answers


def per_token_logps(model, batch):
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    position = (mask.cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position).logits
    n = batch["completion_ids"].shape[1]
    logps = torch.log_softmax(logits[:, -n - 1 : -1].float(), -1)
    return logps.gather(2, batch["completion_ids"].unsqueeze(2)).squeeze(2) * batch["completion_mask"]


def larpo_loss(name, model, tokenizer, prompts, answers, old, **hparams):
    from larpo.sequences import collate, response_logps

    flat = response_logps(model, collate(list(zip(prompts, answers)), tokenizer.pad_token_id))
    shape = (len(LISTS), 4)
    rewards = torch.tensor([rw for _, _, rw in LISTS], dtype=torch.float64)
    lengths = torch.tensor([len(a) for a in answers]).view(shape)
    mask = torch.ones(shape, dtype=torch.bool)
    return objectives.build(name, **hparams)(flat.view(shape), old, mask, lengths, rewards)


def grads(model):
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


@pytest.fixture(scope="module")
def tiny_policy():
    from helpers.tiny_hub import char_tokenizer, tiny_llama_config
    from transformers import LlamaForCausalLM

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(tokenizer)).float().train(), tokenizer


def old_policy(model):
    """The policy that sampled the lists: the model with its weights moved a little."""
    import copy

    old = copy.deepcopy(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in old.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return old


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        {"loss_type": "dapo"},
        {"loss_type": "grpo"},
        {"loss_type": "bnpo"},
        {"loss_type": "dr_grpo"},
        {"loss_type": "dapo", "scale_rewards": "batch"},
        {"loss_type": "grpo", "scale_rewards": "none"},
        {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 0.02},
        {"loss_type": "dapo", "importance_sampling_level": "sequence", "epsilon": 0.02},
    ],
)
def test_grpo_equals_trls_loss_and_gradient(tiny_policy, tmp_path, config):
    from trl.trainer.utils import nanstd

    model, tokenizer = tiny_policy
    trainer = trl_trainer("grpo", model, tokenizer, tmp_path, **config)
    batch, prompts, answers = trl_batch(tokenizer)
    rewards = torch.tensor([w for _, _, rw in LISTS for w in rw])
    groups = rewards.view(-1, 4)
    scale = config.get("scale_rewards", "group")  # TRL's advantage, its own nanstd
    advantages = (groups - groups.mean(1, keepdim=True)).view(-1)
    if scale == "group":
        advantages = advantages / (nanstd(groups, dim=1).repeat_interleave(4) + 1e-4)
    elif scale == "batch":
        advantages = advantages / (nanstd(rewards) + 1e-4)
    inputs = dict(batch, advantages=advantages, num_items_in_batch=batch["completion_mask"].sum())
    old = None
    if config.get("importance_sampling_level") == "sequence":
        sampler = old_policy(model)
        with torch.no_grad():
            inputs["old_per_token_logps"] = per_token_logps(sampler, batch)
        old = inputs["old_per_token_logps"].sum(1).view(len(LISTS), 4).double()
    trl_value = trainer._compute_loss(model, inputs)
    trl_value.backward()
    trl_grads = grads(model)
    ours = larpo_loss("grpo", model, tokenizer, prompts, answers, old, max_completion_length=8, **config)
    ours.backward()
    our_grads = grads(model)
    assert float(ours) == pytest.approx(float(trl_value), rel=1e-5, abs=1e-7)
    assert set(our_grads) == set(trl_grads)
    norm = sum(float(g.norm()) for g in trl_grads.values())
    assert norm > 1e-4  # the tied list carries nothing, the others do
    for name, g in trl_grads.items():
        torch.testing.assert_close(our_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("moved", [False, True])
def test_rloo_equals_trls_loss_and_gradient(tiny_policy, tmp_path, normalize, moved):
    model, tokenizer = tiny_policy
    trainer = trl_trainer("rloo", model, tokenizer, tmp_path, beta=0.0, normalize_advantages=normalize, epsilon=0.02)
    batch, prompts, answers = trl_batch(tokenizer)
    groups = torch.tensor([rw for _, _, rw in LISTS])
    advantages = (groups - (groups.sum(1, keepdim=True) - groups) / 3).view(-1)  # TRL's leave-one-out
    if normalize:
        from trl.trainer.utils import nanstd

        advantages = (advantages - advantages.mean()) / (nanstd(advantages) + 1e-4)
    with torch.no_grad():
        old_logps = per_token_logps(old_policy(model) if moved else model, batch).sum(1)
    trl_value = trainer._compute_loss(model, dict(batch, advantages=advantages, old_logps=old_logps))
    trl_value.backward()
    trl_grads = grads(model)
    old = old_logps.view(len(LISTS), 4).double() if moved else None
    ours = larpo_loss("rloo", model, tokenizer, prompts, answers, old, normalize_advantages=normalize, epsilon=0.02)
    ours.backward()
    our_grads = grads(model)
    assert float(ours) == pytest.approx(float(trl_value), rel=1e-5, abs=1e-7)
    assert sum(float(g.norm()) for g in trl_grads.values()) > 1e-4
    for name, g in trl_grads.items():
        torch.testing.assert_close(our_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
