"""`generator=hf`: batched transformers `generate` with the KV cache and left padding."""

from __future__ import annotations

import logging
import time

import torch
from tqdm.auto import tqdm

from larpo.generation.contract import Cut, chunk_seed, chunks
from larpo.sequences import encode_prompts

log = logging.getLogger(__name__)


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
        self.sequences, self.truncated = 0, 0  # answers generated, and those cut at max_new_tokens

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
            self.sequences += new.shape[0]
            self.truncated += int((~is_eos.any(1)).sum())  # no EOS: generation stopped at the cap
            cut = (~is_eos.any(1)).tolist()
            texts = [Cut(t) if c else t for t, c in zip(tokenizer.batch_decode(new, skip_special_tokens=True), cut)]
            for n, i in enumerate(chunk):
                out[i] = texts[n * k : (n + 1) * k]
        model.train(was_training)
        self.seconds += time.perf_counter() - began
        return out
