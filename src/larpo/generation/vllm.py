"""`generator=vllm`: vLLM sampling (`pip install vllm`, imported only when selected)."""

from __future__ import annotations

import copy
import re
import time

from larpo.generation.contract import Cut, chunk_seed, first_stop
from larpo.sequences import prompt_text


def save_plain(model, tokenizer, directory) -> str:
    """Save a policy as a plain transformers directory, which vLLM loads as a model: a LoRA
    policy (peft) is saved with its adapters merged into a copy of the weights, not as an adapter
    directory (vLLM would not load that as a model)."""
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


class VLLMGenerator:
    """vLLM sampling (`pip install vllm`, imported only when selected), the same call and result
    as `HFGenerator`.

    vLLM keeps its own copy of the weights, so when the policy has changed since the last call
    (a new iteration), or has no `path` of its own (the embedded world's SFT policy), the policy is
    saved to `work_dir` and the engine loaded from it. Each
    request carries its own seed (from the call seed and the prompt's index), so samples do not
    depend on batching, sharding or tensor parallelism.
    """

    def __init__(
        self,
        path: str | None,
        work_dir,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.4,
        max_new_tokens: int = 512,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        progress: bool = True,
        stop: list[str] | None = None,
    ):
        try:
            import vllm
        except ImportError:
            raise ImportError("generator=vllm needs the vllm package: pip install vllm") from None
        self.vllm, self.path, self.work_dir = vllm, path, work_dir
        self.engine_args = dict(
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        self.max_new_tokens, self.progress = max_new_tokens, progress
        self.stop = [re.compile(p) for p in stop or ()]  # applied to vLLM's text: patterns, not strings
        self.llm, self.loaded = None, None
        self.tokens, self.seconds, self.sequences, self.truncated = 0, 0.0, 0, 0

    def _engine(self, model, tokenizer):
        fingerprint = (id(model), float(sum(p.detach().float().sum() for p in model.parameters())))
        if self.llm is None or fingerprint != self.loaded:
            path = self.path
            if self.loaded is not None or path is None:  # hand vLLM the policy's current weights
                path = save_plain(model, tokenizer, self.work_dir)
            self.llm = None  # free the old engine's memory first
            self.llm = self.vllm.LLM(model=path, **self.engine_args)
            self.loaded = fingerprint
        return self.llm

    def __call__(self, model, tokenizer, prompts, k, temperature, seed, desc="generate", shard=(0, 1)):
        began = time.perf_counter()
        llm = self._engine(model, tokenizer)
        rank, world = shard
        mine = [i for i in range(len(prompts)) if i % world == rank]
        params = [
            self.vllm.SamplingParams(
                n=k if temperature > 0 else 1,
                temperature=temperature,
                max_tokens=self.max_new_tokens,
                seed=chunk_seed(seed, i),
            )
            for i in mine
        ]
        texts = [prompt_text(tokenizer, prompts[i]) for i in mine]
        results = llm.generate(texts, params, use_tqdm=self.progress)
        out: list[list[str] | None] = [None] * len(prompts)
        for i, res in zip(mine, results, strict=True):
            answers = []
            for o in res.outputs:
                end = first_stop(self.stop, o.text)
                if end is not None:
                    answers.append(o.text[:end])
                else:
                    answers.append(Cut(o.text) if o.finish_reason == "length" else o.text)
            out[i] = answers * (1 if temperature > 0 else k)
            self.tokens += sum(len(o.token_ids) for o in res.outputs)
            self.sequences += len(res.outputs)
            self.truncated += sum(isinstance(a, Cut) for a in answers)
        self.seconds += time.perf_counter() - began
        return out
