"""Token-level plumbing shared by SFT, training and evaluation: encode prompt+response, sum log-probs."""

from __future__ import annotations

import inspect
import json

import torch


def messages(prompt: str) -> list[dict]:
    """The chat messages of a prompt: a JSON list of {role, content} (a multi-turn prompt from
    chat-format data) or plain text, which is one user turn."""
    if prompt.startswith("[{"):
        try:
            turns = json.loads(prompt)
            if all(isinstance(t, dict) and "role" in t and "content" in t for t in turns):
                return turns
        except json.JSONDecodeError:
            pass
    return [{"role": "user", "content": prompt}]


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer, prompt: str) -> str:
    """What the policy is conditioned on: the tokenizer's chat template applied to the prompt's
    messages (with the assistant turn opened) when the tokenizer has one, else the raw prompt."""
    if not uses_chat_template(tokenizer):
        return prompt
    return tokenizer.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)


def encode_prompts(tokenizer, prompts: list[str], **kwargs):
    """Tokenise prompts for the policy. A chat template writes its own BOS, so none is added then."""
    texts = [prompt_text(tokenizer, p) for p in prompts]
    return tokenizer(texts, add_special_tokens=not uses_chat_template(tokenizer), **kwargs)


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt token ids: the special prefix (BOS) or the chat template's turn header included."""
    return encode_prompts(tokenizer, [prompt])["input_ids"][0]


def encode_response(tokenizer, response: str, ended: bool = True) -> list[int]:
    """Response token ids followed by EOS, so the policy learns where an answer ends; an answer
    cut at the token cap (`ended=False`) gets no EOS it did not generate."""
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if ended else ids


def unflatten(flat: list, lists: list[list]) -> list[list]:
    """Cut a flat list of per-candidate values back into the layout of `lists`."""
    out, i = [], 0
    for items in lists:
        out.append(flat[i : i + len(items)])
        i += len(items)
    return out


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


def response_logps(model, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Summed log-probability of each response given its prompt, shape [N]; at another
    `temperature`, under the distribution sampling at that temperature draws from."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["input_ids"][:, 1:]
    mask = batch["response_mask"][:, 1:]
    # a few rows at a time: the float copy and logsumexp's temporaries are each the size of the
    # chunk's logits, never the batch's (gather minus logsumexp: no full log-softmax either)
    rows = max(1, LOGIT_ELEMENTS // max(1, logits.shape[1] * logits.shape[2]))
    sums = []
    for start in range(0, logits.shape[0], rows):
        chunk = logits[start : start + rows].float()
        if temperature != 1.0:
            chunk = chunk / temperature
        logp = chunk.gather(2, targets[start : start + rows].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(chunk, -1)
        sums.append((logp * mask[start : start + rows]).sum(-1))
    return torch.cat(sums)


LOGIT_ELEMENTS = 1 << 24  # float32 logits converted at once in response_logps: 64 MB


def token_batches(lengths: list[int], tokens: int, rows: int | None = None) -> list[list[int]]:
    """Indices of sequences grouped into batches of at most `tokens` padded tokens (rows x the
    longest row) and at most `rows` sequences, shortest first so each batch carries little
    padding; a sequence longer than the budget is a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        fits = batches and (len(batches[-1]) + 1) * lengths[i] <= tokens
        if fits and (rows is None or len(batches[-1]) < rows):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.no_grad()
def sequence_logps(
    model, seqs: list[tuple[list[int], list[int]]], pad_id: int, tokens: int = 4096, temperature: float = 1.0
) -> list[float]:
    """Summed response log-probs of pre-tokenised (prompt ids, response ids) pairs, no gradients.
    Batches hold at most `tokens` padded tokens (sorted by length, little padding), so the memory
    of a forward pass is bounded by the budget, not by the number or length of the sequences."""
    was_training = model.training
    model.eval()
    out = [0.0] * len(seqs)
    for idx in token_batches([len(p) + len(r) for p, r in seqs], tokens):
        batch = collate([seqs[i] for i in idx], pad_id)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        for i, lp in zip(idx, response_logps(model, batch, temperature).tolist(), strict=True):
            out[i] = lp
    model.train(was_training)
    return out


def cache_key(model) -> str | None:
    """The keyword a model's forward takes its KV cache by: `cache` (transformers 5.2x) or
    `past_key_values` (earlier); None for a forward that takes none."""
    params = inspect.signature(model.forward).parameters
    if "use_cache" not in params:
        return None
    return next((k for k in ("cache", "past_key_values") if k in params), None)


def output_cache(output):
    """The KV cache a forward with `use_cache=True` returned: `cache` (transformers 5.2x) or
    `past_key_values` (earlier)."""
    cache = output.get("cache")
    return cache if cache is not None else output.get("past_key_values")
