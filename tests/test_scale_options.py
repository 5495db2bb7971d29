"""Memory levers for large policies, on the micro policy: gradient checkpointing and LoRA."""

import json
from pathlib import Path

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


def test_lora_reference_is_the_policy_with_its_adapters_off_and_the_merged_policy_is_saved(micro, monkeypatch):
    """`reference=initial` with LoRA: the reference log-probs of iteration 2 (adapters trained for
    an iteration by then) come from the policy with its adapters disabled, no second model loaded,
    and equal the initial policy's own log-probs. `model.merge_lora=true` saves a plain model whose
    log-probs are the trained adapter policy's."""
    from transformers import AutoModelForCausalLM

    import larpo.run.reference
    from larpo.candidates import read_pool
    from larpo.models.policy import load_policy
    from larpo.sequences import encode_prompt, encode_response, sequence_logps

    lora = "model.lora={r:4,lora_alpha:8,lora_dropout:0.0,target_modules:[q_proj,v_proj]}"
    r = build(micro(lora, "reference=initial", "iterations=2", "model.merge_lora=true", "lr=5e-3"))

    def no_second_model(*args, **kwargs):
        raise AssertionError("reference=initial with LoRA loaded a second model")

    monkeypatch.setattr(larpo.run.reference, "load_policy", no_second_model)
    summary = fit(r)
    run_dir = Path(summary["config"]["run_dir"])
    pool, _ = read_pool(run_dir / "pool" / "iteration_2.jsonl")
    tok = r.loop.tokenizer
    seqs, stored = [], []
    for lst in pool:
        for j, i in enumerate(lst.kept):
            seqs.append((encode_prompt(tok, lst.prompt), encode_response(tok, lst.responses[i], lst.ended(i))))
            stored.append(lst.ref_logps[j])
    initial, _ = load_policy(r.loop.reference.initial_path)
    assert stored == pytest.approx(sequence_logps(initial, seqs, tok.pad_token_id), abs=1e-5)
    trained = sequence_logps(r.module.policy, seqs, tok.pad_token_id)
    assert max(abs(a - b) for a, b in zip(trained, stored)) > 1e-3  # the adapters did move the policy
    assert not (run_dir / "policy" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(run_dir / "policy")
    assert sequence_logps(merged, seqs, tok.pad_token_id) == pytest.approx(trained, abs=1e-4)


def test_vllm_gets_a_lora_policy_as_a_plain_merged_model(micro, tmp_path):
    """generator=vllm reloads the policy from a directory each iteration: with LoRA that directory
    is the merged model (no adapter files), its log-probs the adapter policy's; the training
    policy keeps its adapters."""
    from transformers import AutoModelForCausalLM

    from larpo.generation.vllm import save_plain
    from larpo.sequences import sequence_logps

    lora = "model.lora={r:4,lora_alpha:8,lora_dropout:0.0,target_modules:[q_proj,v_proj]}"
    r = build(micro(lora, "iterations=1"))
    policy, tok = r.module.policy, r.loop.tokenizer
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)  # adapters that change the outputs
    path = save_plain(policy, tok, tmp_path / "vllm")
    assert not (Path(path) / "adapter_config.json").exists() and hasattr(policy, "disable_adapter")
    seqs = [(tok("1+2=")["input_ids"], tok("3", add_special_tokens=False)["input_ids"] + [tok.eos_token_id])]
    merged = AutoModelForCausalLM.from_pretrained(path)
    assert sequence_logps(merged, seqs, tok.pad_token_id) == pytest.approx(
        sequence_logps(policy, seqs, tok.pad_token_id), abs=1e-4
    )
    with policy.disable_adapter():
        base = sequence_logps(policy, seqs, tok.pad_token_id)
    assert abs(base[0] - sequence_logps(merged, seqs, tok.pad_token_id)[0]) > 1e-3


def test_compact_decoding_matches_generate(micro, tiny_hub):
    """`generator.compact=true` decodes with ended rows dropped from the batch: greedy answers and
    their ended flags equal `generate`'s (prompts of several lengths, left-padded; with a stop
    pattern too), and sampled answers follow the same distribution: over 4,000 samples of one
    prompt each way, the total variation between the two of the answers' first characters, of
    their last characters and of their lengths (which later tokens and EOS decide, after rows
    have left the batch) is below 0.08 each; an answer distribution over hundreds of strings is
    too wide to compare whole at this size."""
    from collections import Counter

    from larpo.generation.hf import HFGenerator
    from larpo.models.policy import load_policy
    from larpo.run.build import build_source, initial_policy

    model, tok = load_policy(tiny_hub["policy"])
    prompts = ["hi", "a longer prompt here", "mid size one"]
    for stop in (None, [r"e(?=.)"]):
        plain = HFGenerator(max_new_tokens=6, progress=False, stop=stop)
        compact = HFGenerator(max_new_tokens=6, progress=False, stop=stop, compact=True)
        a, b = plain(model, tok, prompts, 1, 0.0, seed=0), compact(model, tok, prompts, 1, 0.0, seed=0)
        assert a == b and [type(x[0]) for x in a] == [type(x[0]) for x in b]  # Cut where generate cut
        assert (plain.tokens, plain.truncated) == (compact.tokens, compact.truncated)
    cfg = micro()
    source = build_source(cfg, 24)
    policy, tok = load_policy(str(initial_policy(cfg, source)))
    prompt = source.eval[:1]
    counts = []
    for c in (False, True):  # 8 x 500 samples of one prompt, drawn both ways
        lists = HFGenerator(max_new_tokens=8, progress=False, compact=c, batch_size=1000)(
            policy, tok, prompt * 8, 500, 1.0, seed=1
        )
        counts.append([answer for answers in lists for answer in answers])
    assert [len(c) for c in counts] == [4000, 4000]
    for feature in (lambda a: a[:1], lambda a: a[-1:], len):
        p, q = (Counter(map(feature, c)) for c in counts)
        tv = 0.5 * sum(abs(p[x] - q[x]) / 4000 for x in set(p) | set(q))
        assert tv < 0.08, (tv, p.most_common(5), q.most_common(5))


def test_next_tokens_takes_each_rows_temperature():
    """Rows at temperature 0 take their argmax; the others draw from their own softmax at their
    own temperature (logits 0 and log 3: P(second) = 0.75 at T=1, 3^(1/0.5)/(1+9) = 0.9 at T=0.5)."""
    from larpo.generation.hf import RowDraws, next_tokens

    n = 20000
    logits = torch.tensor([[0.0, float(torch.log(torch.tensor(3.0)))]]).repeat(3 * n, 1)
    temps = torch.tensor([0.0, 1.0, 0.5]).repeat(n)
    draws = RowDraws(0, list(range(n)), 3)
    token = next_tokens(logits, temps, draws, list(range(3 * n)))[:, 0].view(n, 3).float()
    assert token[:, 0].eq(1).all()  # greedy: the larger logit, every time
    assert token[:, 1].mean().item() == pytest.approx(0.75, abs=0.01)
    assert token[:, 2].mean().item() == pytest.approx(0.9, abs=0.01)
    zero = torch.zeros(4)
    assert torch.equal(next_tokens(logits[:4], zero, draws, [0, 1, 2, 3]), torch.ones(4, 1, dtype=torch.long))


@pytest.mark.parametrize("compact", [False, True])
def test_a_prompts_first_samples_do_not_depend_on_k_the_batch_or_the_other_prompts(compact):
    """Each answer has its own random stream (prompt index, sample index): k=2 draws the first two
    of k=4's samples, at another batch size, and a prompt's samples are the same with other
    prompts after it; `generate` and compact decoding draw the very same answers."""
    from helpers.tiny_hub import char_tokenizer, tiny_llama_config
    from transformers import LlamaForCausalLM

    from larpo.generation.hf import HFGenerator

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer)).eval()
    prompts = [f"{a}+{b}=" for a in range(6) for b in range(4)]

    def sample(k, batch_size, mode=compact, only=prompts, seed=3):
        gen = HFGenerator(batch_size=batch_size, max_new_tokens=6, progress=False, compact=mode)
        return gen(model, tokenizer, only, k, 1.0, seed=seed)

    four = sample(4, 16)
    assert len({a for answers in four for a in answers}) > 60  # real samples, not one answer
    assert [rs[:2] for rs in four] == sample(2, 6)
    assert four[:10] == sample(4, 1024, only=prompts[:10])
    assert four == sample(4, 16, mode=not compact)
    assert four != sample(4, 16, seed=4)


def test_greedy_and_samples_decoded_together(micro, tiny_hub):
    """`with_greedy`: compact decoding puts each prompt's greedy row beside its k sampled rows.
    The greedy answers equal greedy decoding alone (and `generate`'s); the samples follow the
    distribution of sampling alone (total variation of their first characters and lengths below
    0.08 over 2,000 samples each way). Without compact decoding it is the two calls, answer for answer."""
    from collections import Counter

    from larpo.generation.hf import HFGenerator
    from larpo.models.policy import load_policy
    from larpo.run.build import build_source, initial_policy

    model, tok = load_policy(tiny_hub["policy"])
    prompts = ["hi", "a longer prompt here", "mid size one"]
    for compact in (False, True):
        gen = HFGenerator(max_new_tokens=6, progress=False, compact=compact, stop=[r"e(?=.)"])
        greedy, sampled = gen.with_greedy(model, tok, prompts, 3, 1.0, seed=4)
        alone = [
            rs[0]
            for rs in HFGenerator(max_new_tokens=6, progress=False, stop=[r"e(?=.)"])(model, tok, prompts, 1, 0.0, 4)
        ]
        assert greedy == alone and [len(rs) for rs in sampled] == [3, 3, 3]
        if not compact:
            assert sampled == gen(model, tok, prompts, 3, 1.0, seed=4)
    with pytest.raises(ValueError, match="with_greedy"):
        HFGenerator(progress=False)(model, tok, prompts, 2, 1.0, 0, greedy_first=True)
    cfg = micro()
    source = build_source(cfg, 24)
    policy, tok = load_policy(str(initial_policy(cfg, source)))
    gen = HFGenerator(max_new_tokens=8, progress=False, compact=True, batch_size=1000)
    together = [a for rs in gen.with_greedy(policy, tok, source.eval[:1] * 4, 500, 1.0, seed=1)[1] for a in rs]
    apart = [a for rs in gen(policy, tok, source.eval[:1] * 4, 500, 1.0, seed=2) for a in rs]
    assert len(together) == len(apart) == 2000
    for feature in (lambda a: a[:1], len):
        p, q = Counter(map(feature, together)), Counter(map(feature, apart))
        tv = 0.5 * sum(abs(p[x] - q[x]) / 2000 for x in set(p) | set(q))
        assert tv < 0.08, (tv, p.most_common(5), q.most_common(5))
    assert len(set(together)) > 10  # the sampled rows are not the greedy answer repeated


def test_shared_prompt_forward_gives_the_whole_sequences_logps_and_gradients(tiny_hub):
    """`model.share_prompt=true`: each distinct prompt of a batch through the policy once (left-
    padded, its KV cache gathered to its responses' rows, right-padded). Prompts of different
    lengths, 2-3 responses each, of different lengths, at T=1 and T=0.7: the summed log-probs
    equal the whole sequences' forward (1e-5), and so do the gradients of a weighted sum of them
    (every parameter, 1e-4 relative); the reference side (`sequence_logps`) too. Under gradient
    checkpointing (which drops the cache) the same batch takes the whole-sequence forward."""
    from larpo.models.policy import load_policy
    from larpo.sequences import cache_key, collate, response_logps, sequence_logps

    model, tok = load_policy(tiny_hub["policy"])
    model.train()
    enc = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompts = [enc("hello there, how are you"), enc("hi"), enc("a prompt of middle size")]
    answers = [
        [enc("fine thanks"), enc("no"), enc("well, I am fine, thank you")],
        [enc("yo"), enc("hey there")],
        [enc("ok")],
    ]
    seqs = [(p, a + [tok.eos_token_id]) for p, rs in zip(prompts, answers) for a in rs]
    plain, shared = collate(seqs, tok.pad_token_id), collate(seqs, tok.pad_token_id, share_prompt=True)
    assert (
        "prompt_ids" not in plain
        and shared["prompt_ids"].shape[0] == 3
        and shared["prompt_of"].tolist() == [0, 0, 0, 1, 1, 2]
    )
    weights = torch.linspace(0.5, 2.0, len(seqs))
    for t in (1.0, 0.7):
        grads = []
        for batch in (plain, shared):
            model.zero_grad()
            lp = response_logps(model, batch, temperature=t)
            (lp * weights).sum().backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
            grads[-1]["logps"] = lp.detach()
        a, b = grads
        assert torch.allclose(a.pop("logps"), b.pop("logps"), atol=1e-5)
        assert a.keys() == b.keys() and len(a) > 10
        for n in a:
            assert torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-6), n
    assert sequence_logps(model, seqs, tok.pad_token_id, tokens=40, share_prompt=True) == pytest.approx(
        sequence_logps(model, seqs, tok.pad_token_id, tokens=40), abs=1e-5
    )
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    assert cache_key(lora) is not None  # the wrapper's keywords reach the model: the shared path runs
    grads = []
    for batch in (plain, shared):  # through the PEFT wrapper: the adapters' gradients agree too
        lora.zero_grad()
        (response_logps(lora, batch) * weights).sum().backward()
        grads.append({n: p.grad.clone() for n, p in lora.named_parameters() if p.grad is not None})
    assert len(grads[0]) == 8 and all(torch.allclose(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6) for n in grads[0])
    model = lora.unload()
    model.gradient_checkpointing_enable()
    calls = []
    hook = model.register_forward_hook(lambda m, args, kw, out: calls.append(kw["input_ids"].shape), with_kwargs=True)
    response_logps(model, shared)
    hook.remove()
    assert calls == [plain["input_ids"].shape]  # one forward of the whole sequences


def test_prompts_sharing_a_prefix_are_batched_together_and_each_runs_prefix_is_computed_once(tiny_hub):
    """Compact decoding fills its batches with prompts in sorted order (`prefix_chunks`): word
    problems of one kind (the same system message and worked example) are neighbours. In a batch,
    each run of prompts sharing a prefix has it go through the model once (`prefix_groups`),
    however many runs the batch holds: greedy answers equal `generate`'s on the whole prompts, and
    the prompt forward sees each run's prefix once (counted)."""
    from larpo.data.word_problems import word_problems
    from larpo.generation.contract import prefix_chunks
    from larpo.generation.hf import HFGenerator, prefix_groups
    from larpo.models.policy import load_policy
    from larpo.sequences import encode_prompt

    source = word_problems(pool=200, prompts_per_iteration=40, eval_prompts=0, eval_seed=1, seed=0, shots=1)
    prompts = source.train + ["something else entirely"]
    kind = [json.dumps(json.loads(p)[:2]) if p.startswith("[") else "none" for p in prompts]  # the worked example
    assert len(set(kind)) == 6  # the five kinds of word problem, and the odd one
    batches = prefix_chunks(prompts, 2, 16)
    assert sorted(i for b in batches for i in b) == list(range(len(prompts)))
    assert [len(b) for b in batches] == [8] * 5 + [1]  # full batches: 41 prompts of 2 samples, 16 rows a batch
    order = [i for b in batches for i in b]
    changes = sum(kind[a] != kind[b] for a, b in zip(order, order[1:]))
    assert changes == len(set(kind)) - 1  # one kind after another
    model, tok = load_policy(tiny_hub["policy"])
    rows = [encode_prompt(tok, prompts[i]) for i in batches[0] + batches[1]]
    found = [[kind[(batches[0] + batches[1])[j]] for j in range(a, b)] for a, b, _ in prefix_groups(rows)]
    assert all(len(set(g)) == 1 for g in found), found  # a run is one kind
    assert len(found) == len({kind[i] for i in batches[0] + batches[1]}), found  # and a kind one run

    shared = [f"You are a careful assistant. Answer briefly and end with the answer. Question {i}?" for i in range(5)]
    other = [f"Tell me, in one short line, a story about the colour number {i}, please." for i in range(3)]
    mixed = sorted(shared + other + ["odd"])  # three runs in one batch: 5, 3 and 1 prompts
    seen = []
    hook = model.register_forward_hook(lambda m, a, kw, out: seen.append(kw["input_ids"].shape), with_kwargs=True)
    compact = HFGenerator(max_new_tokens=6, progress=False, compact=True)(model, tok, mixed, 1, 0.0, seed=0)
    hook.remove()
    plain = HFGenerator(max_new_tokens=6, progress=False)(model, tok, mixed, 1, 0.0, seed=0)
    assert compact == plain
    lengths = sorted(len(encode_prompt(tok, p)) for p in mixed)
    assert seen[0][0] == 3 and seen[1][0] == len(mixed)  # the three runs' prefixes in one forward, then every rest
    assert seen[0][1] * 3 + seen[1][1] * len(mixed) < sum(lengths) * 3 / 4  # tokens through the model
