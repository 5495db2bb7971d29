"""The reference model's side of an iteration: the training lists tokenised once, with the
reference log-probs of every kept candidate computed once (never inside a training step)."""

from __future__ import annotations

import contextlib
import gc

import torch

from larpo.candidates import CandidateList
from larpo.models.policy import load_policy
from larpo.parallel.shard import Shard
from larpo.run.datamodule import TrainingList
from larpo.sequences import encode_prompt, encode_response, sequence_logps


def autocast(precision: str, model):
    """Lightning's mixed precision for a forward outside the trainer: autocast to bf16 or fp16."""
    if precision in ("bf16-mixed", "16-mixed"):
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast(model.device.type, dtype=dtype)
    return contextlib.nullcontext()


class ReferenceLogps:
    """`mode`: behavior (the policy at the start of the iteration, Algorithm 1), initial (the SFT
    policy at `initial_path`) or none (reference-free objectives)."""

    def __init__(
        self,
        tokenizer,
        mode: str,
        initial_path: str,
        tokens: int = 4096,
        precision: str = "32-true",
        share_prompt: bool = False,
    ):
        """`tokens`: the token budget of one scoring forward pass (`score_tokens`); `precision`: the
        trainer's, so that the reference scores as the training forward does (a mixed-precision
        policy equal to its reference then has a log-ratio of 0, not a rounding gap)."""
        self.tokenizer, self.mode, self.initial_path, self.tokens = tokenizer, mode, initial_path, tokens
        self.precision = str(precision)
        self.share_prompt = share_prompt  # each list's prompt through the reference model once
        self.forwards = 0  # sequences the reference model scored, all iterations

    def tokenised(self, kept: list[CandidateList]) -> list[TrainingList]:
        return [
            TrainingList(
                encode_prompt(self.tokenizer, lst.prompt),
                [encode_response(self.tokenizer, r, lst.ended(i)) for i, r in enumerate(lst.responses)],
                list(lst.rewards),
            )
            for lst in kept
        ]

    def training_lists(self, kept: list[CandidateList], policy, shard: Shard) -> list[TrainingList]:
        """Tokenise once and compute the reference log-probs of every kept candidate, once."""
        items = self.tokenised(kept)
        if self.mode == "none":
            return items
        adapter_off = self.mode == "initial" and hasattr(policy, "disable_adapter")
        if self.mode == "initial" and not adapter_off:
            ref_model, _ = load_policy(self.initial_path)
            ref_model.to(policy.device)
        else:  # behavior: this iteration's behaviour policy; LoRA with adapters off: the initial one
            ref_model = policy
        mine = shard.mine(len(items))  # each rank scores its share of the lists
        seqs = [(items[i].prompt_ids, r) for i in mine for r in items[i].response_ids]
        # LoRA leaves the base weights frozen: without its adapters the policy is the initial one,
        # so no second model is loaded
        with policy.disable_adapter() if adapter_off else contextlib.nullcontext(), autocast(self.precision, policy):
            flat = sequence_logps(  # once per candidate
                ref_model, seqs, self.tokenizer.pad_token_id, self.tokens, share_prompt=self.share_prompt
            )
        self.forwards += len(seqs)
        per_list, start = {}, 0
        for i in mine:
            per_list[i] = flat[start : start + len(items[i].response_ids)]
            start += len(items[i].response_ids)
        for it, lps in zip(items, shard.gather(per_list, len(items)), strict=True):
            it.ref_logps = lps
        if ref_model is not policy:
            del ref_model
            gc.collect()
        return items
