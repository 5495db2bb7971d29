"""Sampling candidate responses from a policy: batched `generate` with the KV cache and left padding."""

from __future__ import annotations

import logging
import time

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class HFGenerator:
    """Batched transformers `generate`.

    Prompts are tokenised once, left-padded, and repeated k times in the batch (one prompt
    encoding shared by its k samples). Generation stops when every sequence has emitted EOS.
    ``temperature == 0`` means greedy decoding.
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
    ) -> list[list[str]]:
        if not prompts:
            return []
        began = time.perf_counter()
        was_training = model.training
        model.eval()
        torch.manual_seed(seed)
        enc = tokenizer(prompts, padding=True, return_tensors="pt")
        ids = enc["input_ids"].repeat_interleave(k, dim=0)
        attn = enc["attention_mask"].repeat_interleave(k, dim=0)
        sample = temperature > 0
        outputs: list[str] = []
        rows = range(0, ids.shape[0], self.batch_size)
        for start in tqdm(rows, desc=desc, disable=not self.progress, leave=False):
            stop = start + self.batch_size
            # trim left padding that the whole chunk shares
            width = int(attn[start:stop].sum(1).max())
            chunk_ids, chunk_attn = ids[start:stop, -width:], attn[start:stop, -width:]
            out = model.generate(
                input_ids=chunk_ids.to(model.device),
                attention_mask=chunk_attn.to(model.device),
                do_sample=sample,
                temperature=temperature if sample else None,
                top_k=0 if sample else None,
                top_p=1.0 if sample else None,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = out[:, width:]
            is_eos = new == tokenizer.eos_token_id
            after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # HF pads these once a row has ended
            self.tokens += int((~after_eos).sum())
            outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
        model.train(was_training)
        self.seconds += time.perf_counter() - began
        return [outputs[i * k : (i + 1) * k] for i in range(len(prompts))]
