"""Memory levers for large policies, on the micro policy: gradient checkpointing and LoRA."""

import pytest
import torch

from larpo.run.build import build
from larpo.run.fit import fit


def test_gradient_checkpointing_changes_memory_not_results(micro, tmp_path):
    runs = []
    for flag in (False, True):
        cfg = micro(f"model.gradient_checkpointing={str(flag).lower()}")
        cfg.run_dir = str(tmp_path / str(flag))
        r = build(cfg)
        assert r.module.policy.is_gradient_checkpointing is flag
        runs.append(fit(r))
    plain, checkpointed = (s["history"] for s in runs)
    for a, b in zip(plain, checkpointed, strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, abs=1e-6), key


def test_lora_trains_the_adapters_only(micro):
    r = build(micro("model.lora={r:4,lora_alpha:8,lora_dropout:0.0,target_modules:[q_proj,v_proj]}", "iterations=1"))
    before = {n: p.detach().clone() for n, p in r.module.policy.named_parameters()}
    adapters = [n for n in before if "lora_" in n]
    assert adapters and all(r.module.policy.get_parameter(n).requires_grad for n in adapters)
    summary = fit(r)
    after = dict(r.module.policy.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= set(adapters)  # the base model is frozen
    assert summary["history"][-1]["iteration"] == 1


def test_bf16_policy_option_loads_bfloat16_weights(tiny_hub):
    from larpo.models.policy import load_policy

    model, tok = load_policy(str(tiny_hub["policy"]), dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert tok.padding_side == "left" and tok.pad_token is not None
