"""Reward models (the rerankers): each scores a list of candidate responses per prompt.

`score(prompts, candidates)` returns one reward per candidate. A list-relative reward model
(`list_relative = True`, e.g. a pairwise ranker) must be re-run on merged lists, because its scores
depend on the other candidates of the list. Each option of the `reward_model` group names one of
these classes (or a user's) with `_target_` and `_partial_: true`; it is built with the
run's `RewardContext` as `context`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from larpo.sequences import messages, unflatten, uses_chat_template
from larpo.source import Source
from larpo.sources import answers_match

log = logging.getLogger(__name__)


@dataclass
class RewardContext:
    """What a reward model may need from the run: each option's `_partial_` target takes it as
    `context` and uses only what it needs."""

    source: Source  # reference answers, gold judge, an embedded world's task
    policy_path: str  # the initial policy (a learned reward model starts from its backbone)
    cache_dir: str
    seed: int
    device: str | None = None
    progress: bool = True


class JudgeReward:
    """The data source's gold judge used as the reward model (`reward_model=judge`)."""

    list_relative = False

    def __init__(self, context: RewardContext):
        if context.source.judge is None:
            raise ValueError("reward_model=judge needs a data source with a gold judge, e.g. data=arithmetic")
        self.judge, self.progress = context.source.judge, context.progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        pairs = zip(prompts, candidates, strict=True)
        return [
            [self.judge(p, r) for r in rs]
            for p, rs in tqdm(
                pairs, total=len(prompts), desc="score", disable=None if self.progress else True, leave=False
            )
        ]


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
        self.batch_size, self.progress = batch_size, progress

    def text(self, prompt: str, response: str) -> str:
        if not uses_chat_template(self.tokenizer):
            return prompt + response
        chat = [*messages(prompt), {"role": "assistant", "content": response}]
        return self.tokenizer.apply_chat_template(chat, tokenize=False)

    @torch.no_grad()
    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [self.text(p, r) for p, rs in zip(prompts, candidates, strict=True) for r in rs]
        templated = uses_chat_template(self.tokenizer)  # the template writes its own BOS
        flat: list[float] = []
        for start in tqdm(
            range(0, len(texts), self.batch_size),
            desc="score",
            disable=None if self.progress else True,
            leave=False,
        ):
            enc = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                return_tensors="pt",
                add_special_tokens=not templated,
            ).to(self.model.device)
            flat += self.model(**enc).logits[:, 0].float().tolist()
        return unflatten(flat, candidates)


class PairRMReward:
    """LLM-Blender's PairRM, a pairwise ranker (`pip install llm-blender`, imported only here).

    It compares the candidates of one list with each other, so its scores are relative to the
    list (`list_relative`): a merged list is scored again, never stitched from old scores.
    """

    list_relative = True

    def __init__(self, path: str = "llm-blender/PairRM", batch_size: int = 16, context: RewardContext | None = None):
        progress = context.progress if context else True
        try:
            import llm_blender
        except ImportError:
            raise ImportError("reward_model=pairrm needs the llm-blender package: pip install llm-blender") from None
        self.blender = llm_blender.Blender()
        self.blender.loadranker(path)
        self.batch_size, self.progress = batch_size, progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        texts = [messages(p)[-1]["content"] for p in prompts]
        scores = self.blender.rank(
            texts, candidates, return_scores=True, batch_size=self.batch_size, disable_tqdm=not self.progress
        )
        return [[float(x) for x in row] for row in scores]


class VerifierReward:
    """GSM8K-style answer checking: 1 when the final number of a response equals the reference
    answer's numerically, else 0 (a missing number is 0). Never a substring match."""

    list_relative = False

    def __init__(self, context: RewardContext):
        if context.source.reference is None:
            raise ValueError("reward_model=verifier needs reference answers, e.g. data=gsm8k")
        self.reference, self.progress = context.source.reference, context.progress

    def score(self, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
        out = []
        for p, rs in tqdm(
            zip(prompts, candidates, strict=True),
            total=len(prompts),
            desc="score",
            disable=None if self.progress else True,
            leave=False,
        ):
            ref = self.reference(p)
            out.append([float(ref is not None and answers_match(r, ref)) for r in rs])
        return out
