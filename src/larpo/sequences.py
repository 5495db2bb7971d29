"""Token-level plumbing shared by SFT, training and evaluation: encode prompt+response, sum log-probs."""

from __future__ import annotations

import torch


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt token ids, with the tokenizer's special prefix (BOS)."""
    return tokenizer(prompt)["input_ids"]


def encode_response(tokenizer, response: str) -> list[int]:
    """Response token ids followed by EOS, so the policy learns where an answer ends."""
    return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def collate(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad (prompt, response) id pairs into one batch.

    Returns input_ids [N, T], attention_mask [N, T], and response_mask [N, T] marking the positions
    whose *next-token prediction* is a response token (the log-prob of token t sits at t-1).
    """
    width = max(len(p) + len(r) for p, r in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(sequences), width), dtype=torch.long)
    resp = torch.zeros((len(sequences), width), dtype=torch.bool)
    for i, (p, r) in enumerate(sequences):
        n = len(p) + len(r)
        ids[i, :n] = torch.tensor(p + r)
        attn[i, :n] = 1
        resp[i, len(p) : n] = True
    return {"input_ids": ids, "attention_mask": attn, "response_mask": resp}


def response_logps(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed log-probability of each response given its prompt, shape [N]."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["input_ids"][:, 1:]
    mask = batch["response_mask"][:, 1:]
    logits = logits[:, :-1].float()
    # gather minus logsumexp: never materialises a full log-softmax over the vocabulary
    logp = logits.gather(2, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (logp * mask).sum(-1)
