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


def collate(
    sequences: list[tuple[list[int], list[int]]], pad_id: int, share_prompt: bool = False
) -> dict[str, torch.Tensor]:
    """Right-pad (prompt, response) id pairs into one batch.

    Returns input_ids [N, T], attention_mask [N, T], and response_mask [N, T] marking the positions
    whose *next-token prediction* is a response token (the log-prob of token t sits at t-1).
    `share_prompt`: also the layout `response_logps` sends each distinct prompt through the model
    once by (`prompt_layout`).
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
    batch = {"input_ids": ids, "attention_mask": attn, "response_mask": resp}
    if share_prompt and all(sequences[i][1] for i in range(len(sequences))):
        batch.update(prompt_layout(sequences, pad_id))
    return batch


def prompt_layout(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Each distinct prompt once, left-padded (prompt_ids, prompt_mask [P, Tp]), and the
    responses right-padded (response_ids, response_tokens [N, Tr]) with the row of their prompt
    (prompt_of [N]): the k candidates of a list share one prompt forward and its KV cache."""
    rows: dict[tuple[int, ...], int] = {}
    prompt_of = [rows.setdefault(tuple(p), len(rows)) for p, _ in sequences]
    wide = max(map(len, rows))
    prompt_ids = torch.full((len(rows), wide), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(rows), wide), dtype=torch.long)
    for i, p in enumerate(rows):
        prompt_ids[i, wide - len(p) :] = torch.tensor(p)
        prompt_mask[i, wide - len(p) :] = 1
    long = max(len(r) for _, r in sequences)
    response_ids = torch.full((len(sequences), long), pad_id, dtype=torch.long)
    response_tokens = torch.zeros((len(sequences), long), dtype=torch.long)
    for i, (_, r) in enumerate(sequences):
        response_ids[i, : len(r)] = torch.tensor(r)
        response_tokens[i, : len(r)] = 1
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "prompt_of": torch.tensor(prompt_of),
        "response_ids": response_ids,
        "response_tokens": response_tokens,
    }


def response_logps(model, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Summed log-probability of each response given its prompt, shape [N]; at another
    `temperature`, under the distribution sampling at that temperature draws from. A batch with
    the prompt layout (`collate(share_prompt=True)`) sends each distinct prompt through the model
    once, where the model takes a KV cache (not under gradient checkpointing, which drops it)."""
    if (
        "prompt_ids" in batch
        and cache_key(model) is not None
        and not getattr(model, "is_gradient_checkpointing", False)
    ):
        return _shared_prompt_logps(model, batch, temperature)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    return _summed(logits, batch["input_ids"][:, 1:], batch["response_mask"][:, 1:], temperature)


def _shared_prompt_logps(model, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
    """The prompts' forward once (their last position's logits predict each response's first
    token), its KV cache gathered to the responses' rows, then the responses' forward: the same
    log-probs as the whole sequences' forward, and under autograd the same gradients (a prompt's
    gradient sums over its responses). SmolLM2's 110-token prompts and ~25-token answers at k=4:
    2.5x fewer tokens through the model, and logits of the answers' positions only."""
    prompt_mask, of = batch["prompt_mask"], batch["prompt_of"]
    position = (prompt_mask.cumsum(1) - 1).clamp(min=0)
    head = model(
        input_ids=batch["prompt_ids"],
        attention_mask=prompt_mask,
        position_ids=position,
        use_cache=True,
        **last_logits(model),
    )
    cache = output_cache(head)
    cache.batch_select_indices(of)  # each response's row gets its prompt's keys and values
    tokens = batch["response_tokens"]
    out = model(
        input_ids=batch["response_ids"],
        attention_mask=torch.cat([prompt_mask[of], tokens], 1),
        position_ids=position[of, -1:] + 1 + torch.arange(tokens.shape[1], device=tokens.device),
        use_cache=True,
        **{cache_key(model): cache},
    )
    logits = torch.cat([head.logits[of, -1:], out.logits[:, :-1]], 1)  # position j predicts response token j
    return _summed(logits, batch["response_ids"], tokens.bool(), temperature)


def _summed(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per row, the sum over the masked positions of log softmax(logits / temperature)[target]."""
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


def token_batches(
    lengths: list[int], tokens: int, rows: int | None = None, order: list[int] | None = None
) -> list[list[int]]:
    """Indices of sequences grouped into batches of at most `tokens` padded tokens (rows x the
    longest row) and at most `rows` sequences, shortest first so each batch carries little
    padding (or in the given `order`); a sequence longer than the budget is a batch of its own."""
    order = order if order is not None else sorted(range(len(lengths)), key=lambda i: lengths[i])
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
    model,
    seqs: list[tuple[list[int], list[int]]],
    pad_id: int,
    tokens: int = 4096,
    temperature: float = 1.0,
    share_prompt: bool = False,
) -> list[float]:
    """Summed response log-probs of pre-tokenised (prompt ids, response ids) pairs, no gradients.
    Batches hold at most `tokens` padded tokens (sorted by length, little padding), so the memory
    of a forward pass is bounded by the budget, not by the number or length of the sequences.
    `share_prompt`: batches by prompt, each distinct prompt through the model once."""
    was_training = model.training
    model.eval()
    out = [0.0] * len(seqs)
    lengths = [len(p) + len(r) for p, r in seqs]
    order = sorted(range(len(seqs)), key=lambda i: (seqs[i][0], lengths[i])) if share_prompt else None
    for idx in token_batches(lengths, tokens, order=order):
        batch = collate([seqs[i] for i in idx], pad_id, share_prompt)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        for i, lp in zip(idx, response_logps(model, batch, temperature).tolist(), strict=True):
            out[i] = lp
    model.train(was_training)
    return out


def cache_key(model) -> str | None:
    """The keyword a model's forward takes its KV cache by: `cache` (transformers 5.2x) or
    `past_key_values` (earlier); None for a forward that takes none."""
    params = inspect.signature(_inner(model).forward).parameters
    if "use_cache" not in params:
        return None
    return next((k for k in ("cache", "past_key_values") if k in params), None)


def output_cache(output):
    """The KV cache a forward with `use_cache=True` returned: `cache` (transformers 5.2x) or
    `past_key_values` (earlier)."""
    cache = output.get("cache")
    return cache if cache is not None else output.get("past_key_values")


def checkpointing(model) -> bool:
    """Whether the model recomputes activations in backward (transformers renamed the flag)."""
    inner = _inner(model)
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(inner), name):
            return bool(getattr(inner, name))
    return False


def _inner(model):
    """The transformers model under a PEFT wrapper (whose forward passes its keywords on to it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def last_logits(model) -> dict:
    """Ask a prompt forward for the last position's logits only, where the model can (as `generate`
    does): the logits of every prompt position of a batch are prompts x tokens x vocabulary floats
    (2.8 GB for 128 SmolLM2 prompts of 110 tokens)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(_inner(model).forward).parameters else {}
