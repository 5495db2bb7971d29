"""Generation phase: larpo's HFGenerator against bare batched `model.generate` on the same work.

The SFT-sized policy (0.86M-parameter Llama, random init) samples k answers for each of N
arithmetic prompts at T=1. Baselines, measured in the same run: a bare loop of batched `generate`
calls over prompts repeated k times, and `generate(num_return_sequences=k)`. Median of --repeats.

    python benchmarks/generation.py --prompts 2048 --k 8 --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings

import torch

from larpo.generation.hf import HFGenerator
from larpo.models.policy import build_tiny_llama, load_policy
from larpo.worlds.arithmetic import ArithmeticTask, build_tokenizer

CHUNK, NEW = 1024, 8


@torch.no_grad()
def bare_generate(model, tok, prompts, k: int, per_call: str) -> float:
    """Batched generate; `per_call` is `repeat` (prompts repeated k times) or `num_return_sequences`."""
    start = time.perf_counter()
    torch.manual_seed(0)
    kwargs = dict(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=NEW,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    outputs = []
    if per_call == "repeat":
        repeated = [p for p in prompts for _ in range(k)]
        for i in range(0, len(repeated), CHUNK):
            enc = tok(repeated[i : i + CHUNK], padding=True, return_tensors="pt")
            out = model.generate(**enc, **kwargs)
            outputs += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    else:
        step = CHUNK // k
        for i in range(0, len(prompts), step):
            enc = tok(prompts[i : i + step], padding=True, return_tensors="pt")
            out = model.generate(**enc, num_return_sequences=k, **kwargs)
            outputs += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(outputs) == len(prompts) * k
    return time.perf_counter() - start


def larpo_generate(model, tok, prompts, k: int) -> float:
    start = time.perf_counter()
    out = HFGenerator(batch_size=CHUNK, max_new_tokens=NEW, progress=False)(model, tok, prompts, k, 1.0, seed=0)
    assert sum(map(len, out)) == len(prompts) * k
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as d:
        tok = build_tokenizer()
        build_tiny_llama(tok, 128, 4, 4, 384, 32, seed=0).save_pretrained(d)
        tok.save_pretrained(d)
        model, tok = load_policy(d)
        model.eval()
        prompts = ArithmeticTask().prompts(args.prompts, seed=0)
        runs = {
            "bare generate (repeated prompts)": lambda: bare_generate(model, tok, prompts, args.k, "repeat"),
            "bare generate(num_return_sequences)": lambda: bare_generate(
                model, tok, prompts, args.k, "num_return_sequences"
            ),
            "larpo HFGenerator": lambda: larpo_generate(model, tok, prompts, args.k),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                times[name].append(fn())
    base = statistics.median(times["bare generate (repeated prompts)"])
    print(f"{args.prompts} prompts x {args.k} samples, T=1, {NEW} new tokens max, median of {args.repeats}")
    print(f"{'contender':38s} {'seconds':>8s} {'vs bare':>8s}")
    for name, ts in times.items():
        print(f"{name:38s} {statistics.median(ts):8.2f} {statistics.median(ts) / base:8.2f}x")


if __name__ == "__main__":
    main()
