"""Sampling candidate responses from a policy: batched `generate` with the KV cache and left padding."""

from __future__ import annotations

import logging
import time

import torch
from tqdm.auto import tqdm

from larpo.sequences import encode_prompts, prompt_text

log = logging.getLogger(__name__)


def chunks(n_prompts: int, k: int, batch_size: int) -> list[range]:
    """Prompt index ranges, each one generate batch of about `batch_size` sequences. Chunk j is
    sampled with its own seed, so a prompt's samples do not depend on which rank draws it."""
    size = max(1, batch_size // max(1, k))
    return [range(i, min(i + size, n_prompts)) for i in range(0, n_prompts, size)]


def chunk_seed(seed: int, j: int) -> int:
    return seed * 1_000_003 + j


class HFGenerator:
    """Batched transformers `generate`.

    Prompts are tokenised once, left-padded, and repeated k times in the batch (one prompt
    encoding shared by its k samples). Generation stops when every sequence has emitted EOS.
    ``temperature == 0`` means greedy decoding. With `shard=(rank, world)` only the chunks
    j % world == rank are generated (the other prompts get None): data-parallel sampling.
    """

    def __init__(self, batch_size: int = 1024, max_new_tokens: int = 16, progress: bool = True):
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.tokens, self.seconds = 0, 0.0  # generated tokens (up to EOS) and time, over all calls

    @torch.no_grad()
    def __call__(
        self,
        model,
        tokenizer,
        prompts: list[str],
        k: int,
        temperature: float,
        seed: int,
        desc: str = "generate",
        shard: tuple[int, int] = (0, 1),
    ) -> list[list[str] | None]:
        if not prompts:
            return []
        began = time.perf_counter()
        was_training = model.training
        model.eval()
        sample = temperature > 0
        out: list[list[str] | None] = [None] * len(prompts)
        rank, world = shard
        mine = [(j, c) for j, c in enumerate(chunks(len(prompts), k, self.batch_size)) if j % world == rank]
        for j, chunk in tqdm(mine, desc=desc, disable=None if self.progress else True, leave=False):
            torch.manual_seed(chunk_seed(seed, j))
            enc = encode_prompts(tokenizer, [prompts[i] for i in chunk], padding=True, return_tensors="pt")
            width = enc["input_ids"].shape[1]
            generated = model.generate(
                input_ids=enc["input_ids"].repeat_interleave(k, dim=0).to(model.device),
                attention_mask=enc["attention_mask"].repeat_interleave(k, dim=0).to(model.device),
                do_sample=sample,
                temperature=temperature if sample else None,
                top_k=0 if sample else None,
                top_p=1.0 if sample else None,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = generated[:, width:]
            is_eos = new == tokenizer.eos_token_id
            after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # HF pads these once a row has ended
            self.tokens += int((~after_eos).sum())
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            for n, i in enumerate(chunk):
                out[i] = texts[n * k : (n + 1) * k]
        model.train(was_training)
        self.seconds += time.perf_counter() - began
        return out


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
        self.llm, self.loaded = None, None
        self.tokens, self.seconds = 0, 0.0

    def _engine(self, model, tokenizer):
        fingerprint = (id(model), float(sum(p.detach().float().sum() for p in model.parameters())))
        if self.llm is None or fingerprint != self.loaded:
            path = self.path
            if self.loaded is not None or path is None:  # hand vLLM the policy's current weights
                model.save_pretrained(self.work_dir)
                tokenizer.save_pretrained(self.work_dir)
                path = str(self.work_dir)
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
            out[i] = [o.text for o in res.outputs] * (1 if temperature > 0 else k)
            self.tokens += sum(len(o.token_ids) for o in res.outputs)
        self.seconds += time.perf_counter() - began
        return out
