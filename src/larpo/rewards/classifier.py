"""`reward_model=sequence_classifier` (and `fsfairx`): a transformers sequence classifier."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from larpo.rewards.contract import RewardContext
from larpo.sequences import messages, token_batches, unflatten, uses_chat_template


class SequenceClassifierReward:
    """A transformers sequence classifier; the reward is the raw logit of prompt + response.

    Its tokenizer is its own, so policy and reward model may tokenise differently. When that
    tokenizer has a chat template (FsfairX-LLaMA3-RM has), the conversation [user: prompt,
    assistant: response] is rendered with it; otherwise the text is prompt + response.
    """

    list_relative = False

    def __init__(
        self,
        path: str,
        batch_size: int = 512,
        tokens: int = 4096,
        trust_remote_code: bool = False,
        dtype: str | None = None,
        context: RewardContext | None = None,
    ):
        device, progress = (context.device, context.progress) if context else (None, True)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        kwargs = {"trust_remote_code": trust_remote_code}
        if dtype:
            kwargs["dtype"] = getattr(torch, dtype)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs).eval()
        if device:
            self.model.to(device)
        self.batch_size, self.tokens, self.progress = batch_size, tokens, progress

    def text(self, prompt: str, response: str) -> str:
        if not uses_chat_template(self.tokenizer):
            return prompt + response
        chat = [*messages(prompt), {"role": "assistant", "content": response}]
        return self.tokenizer.apply_chat_template(chat, tokenize=False)

    @torch.no_grad()
    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [self.text(p, r) for p, rs in zip(prompts, candidates, strict=True) for r in rs]
        templated = uses_chat_template(self.tokenizer)  # the template writes its own BOS
        ids = self.tokenizer(texts, add_special_tokens=not templated)["input_ids"]
        # at most `batch_size` texts and `tokens` padded tokens a forward pass: bounded memory
        batches = token_batches([len(x) for x in ids], self.tokens, self.batch_size)
        flat = [0.0] * len(texts)
        for idx in tqdm(batches, desc="score", disable=None if self.progress else True, leave=False):
            enc = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.model.device)
            for i, score in zip(idx, self.model(**enc).logits[:, 0].float().tolist(), strict=True):
                flat[i] = score
        return unflatten(flat, candidates)
