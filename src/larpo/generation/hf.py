"""`generator=hf`: batched transformers `generate` with the KV cache and left padding."""

from __future__ import annotations

import logging
import os
import re
import time

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from larpo import memory
from larpo.generation.contract import Cut, chunk_seed, chunks, first_stop, prefix_chunks, row_seed
from larpo.sequences import cache_key, encode_prompts, last_logits, output_cache

log = logging.getLogger(__name__)


class HFGenerator:
    """Batched transformers `generate`.

    Prompts are tokenised once, left-padded, and repeated k times in the batch; each prompt goes
    through the model once and its KV cache is repeated for its k samples (`shared_prompt_cache`).
    Generation stops when every sequence has emitted EOS.
    ``temperature == 0`` means greedy decoding. With `shard=(rank, world)` only the chunks
    j % world == rank are generated (the other prompts get None): data-parallel sampling.
    `stop`: regular expressions that end an answer where one first matches (e.g. the answer line
    `#### N` of a worked solution): the answer is cut at the match's end and counts as ended, so
    a batch is not held to max_new_tokens by answers that ramble on after their result.
    `compact`: decode here instead of `generate`, dropping each row from the batch once it has
    ended. Both draw each token by the Gumbel-max trick from the answer's own random stream
    (`RowDraws`): the same answers, and the first j samples of a prompt are those of a call with
    k=j (every arm of a seed samples the same lists; a pair is the first two of four).
    `with_greedy(...)`: each prompt's greedy answer and its k samples; compact decoding draws them
    in one batch from one forward of the prompt (an evaluation's greedy and sampled passes would
    otherwise each send every prompt through the model).
    """

    def __init__(
        self,
        batch_size: int = 1024,
        max_new_tokens: int = 16,
        progress: bool = True,
        stop: list[str] | None = None,
        compact: bool = False,
    ):
        self.batch_size = batch_size
        self.compact = compact
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.stop = [re.compile(p) for p in stop or ()]
        self.tokens, self.seconds = 0, 0.0  # generated tokens (up to EOS) and time, over all calls
        self.sequences, self.truncated = 0, 0  # answers generated, and those cut at max_new_tokens

    def with_greedy(
        self, model, tokenizer, prompts: list[str], k: int, temperature: float, seed: int, desc: str = "generate"
    ) -> tuple[list[str], list[list[str]]]:
        """(each prompt's greedy answer, its k samples at `temperature`). Compact decoding puts the
        greedy row beside the k sampled rows of its prompt (row temperature 0); otherwise the two
        are separate calls, the very answers `__call__` gives."""
        if not (self.compact and cache_key(model) is not None):
            greedy = [rs[0] for rs in self(model, tokenizer, prompts, 1, 0.0, seed, desc=f"{desc} greedy")]
            return greedy, self(model, tokenizer, prompts, k, temperature, seed, desc=f"{desc} sample")
        both = self(model, tokenizer, prompts, k + 1, temperature, seed, desc=desc, greedy_first=True)
        return [rs[0] for rs in both], [rs[1:] for rs in both]

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
        greedy_first: bool = False,
    ) -> list[list[str] | None]:
        """k answers per prompt; `greedy_first` (compact decoding only): the first is greedy."""
        if not prompts:
            return []
        if greedy_first and not (self.compact and cache_key(model) is not None):
            raise ValueError("greedy_first needs compact decoding of a model with a KV cache: use with_greedy")
        began = time.perf_counter()
        was_training = model.training
        model.eval()
        out: list[list[str] | None] = [None] * len(prompts)
        rank, world = shard
        compact = self.compact and cache_key(model) is not None
        batches = prefix_chunks(prompts, k, self.batch_size) if compact else chunks(len(prompts), k, self.batch_size)
        mine = [(j, c) for j, c in enumerate(batches) if j % world == rank]
        for j, chunk in tqdm(mine, desc=desc, disable=None if self.progress else True, leave=False):
            torch.manual_seed(chunk_seed(seed, j))
            enc = encode_prompts(tokenizer, [prompts[i] for i in chunk], padding=True, return_tensors="pt")
            ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
            draws = RowDraws(seed, list(chunk), k, greedy_first, self.max_new_tokens)
            if compact:
                temps = torch.full((len(chunk), k), float(temperature))
                if greedy_first:
                    temps[:, 0] = 0.0
                texts, ended, n_tokens = self._compact(model, tokenizer, ids, mask, k, temps.flatten(), draws)
            else:
                texts, ended, n_tokens = self._generate(model, tokenizer, ids, mask, k, temperature, draws)
            self.tokens += n_tokens
            self.sequences += len(texts)
            self.truncated += len(ended) - sum(ended)  # neither EOS nor a stop: generation stopped at the cap
            texts = [Cut(t) if not e else t for t, e in zip(texts, ended)]
            for n, i in enumerate(chunk):
                out[i] = texts[n * k : (n + 1) * k]
            memory.trim()  # the chunk's KV cache, freed in pieces of many sizes, back to the OS
        model.train(was_training)
        self.seconds += time.perf_counter() - began
        return out

    def _generate(
        self, model, tokenizer, ids, mask, k: int, temperature: float, draws: RowDraws
    ) -> tuple[list[str], list[bool], int]:
        """transformers `generate` on the chunk's prompts, each repeated k times: (texts, ended,
        tokens). Sampling picks each token from the answer's own stream (`GumbelPick`)."""
        sample, width = temperature > 0, ids.shape[1]
        generated = model.generate(
            input_ids=ids.repeat_interleave(k, dim=0),
            attention_mask=mask.repeat_interleave(k, dim=0),
            **shared_prompt_cache(model, ids, mask, k),
            do_sample=sample,
            temperature=temperature if sample else None,
            top_k=0 if sample else None,
            top_p=1.0 if sample else None,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stopping_criteria=StoppingCriteriaList([StopAt(tokenizer, self.stop, width)]) if self.stop else None,
            logits_processor=LogitsProcessorList([GumbelPick(draws, temperature)]) if sample else None,
        )
        new = generated[:, width:]
        is_eos = new == tokenizer.eos_token_id
        texts, stopped = [], []
        for text in tokenizer.batch_decode(new, skip_special_tokens=True):
            end = first_stop(self.stop, text)
            texts.append(text if end is None else text[:end])
            stopped.append(end is not None)
        ended = is_eos.any(1) | torch.tensor(stopped, dtype=torch.bool)
        after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # HF pads these once a row has ended
        return texts, ended.tolist(), int((~after_eos).sum())

    def _compact(
        self, model, tokenizer, ids, mask, k: int, temps: torch.Tensor, draws: RowDraws
    ) -> tuple[list[str], list[bool], int]:
        """The same sampling as `_generate` (softmax at the temperature, or greedy), decoded here
        so that a row that has ended (EOS or a stop pattern) leaves the batch and its KV cache:
        each step costs the rows still generating, not the longest answer's length times all rows.
        Each prompt goes through the model once (its cache repeated for its k samples). `temps`:
        each row's temperature (0: greedy), rows prompt-major."""
        key, eos = cache_key(model), tokenizer.eos_token_id
        logits, cache, mask, position = prompt_forward(model, ids, mask, tokenizer.pad_token_id)
        cache.batch_repeat_interleave(k)
        logits = logits.repeat_interleave(k, 0)
        mask, position = mask.repeat_interleave(k, 0), position.repeat_interleave(k, 0)
        rows = list(range(logits.shape[0]))  # the batch rows still generating, as indices of the answers
        answers: list[list[int]] = [[] for _ in rows]
        ended, eos_seen = [False] * len(rows), 0
        temps = temps.to(logits.device)
        for step in range(self.max_new_tokens):
            token = next_tokens(logits, temps, draws, rows)
            going = []
            for b, (row, t) in enumerate(zip(rows, token[:, 0].tolist())):
                if t == eos:
                    ended[row] = True
                    continue
                answers[row].append(t)
                if (
                    self.stop
                    and first_stop(self.stop, tokenizer.decode(answers[row], skip_special_tokens=True)) is not None
                ):
                    ended[row] = True
                    continue
                going.append(b)
            if not going or step == self.max_new_tokens - 1:
                break
            if len(going) < len(rows):  # ended rows leave the batch and the cache
                keep = torch.tensor(going, device=logits.device)
                cache.batch_select_indices(keep)
                token, mask, position, temps = token[keep], mask[keep], position[keep], temps[keep]
                rows = [rows[b] for b in going]
            mask = torch.cat([mask, torch.ones_like(token)], 1)
            position = position + 1
            out = model(input_ids=token, attention_mask=mask, position_ids=position, use_cache=True, **{key: cache})
            logits = out.logits[:, -1]
        texts = []
        for tokens in answers:
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            end = first_stop(self.stop, text)
            texts.append(text if end is None else text[:end])
        return texts, ended, sum(map(len, answers)) + eos_seen  # as `generate` counts: up to EOS


SHARED_PREFIX = 8  # tokens: a common prefix shorter than this is not worth a forward of its own


def prefix_groups(rows: list[list[int]]) -> list[tuple[int, int, int]]:
    """Runs of consecutive prompts (token ids) that share a prefix (a system message and worked
    example): (first, end, prefix length) per run. A prompt joins the run before it where the
    tokens it shares with the run's prefix (at least SHARED_PREFIX) outweigh those the run's other
    prompts would lose from theirs. The prefix stops one token short of the run's shortest
    prompt, so every prompt has a rest to feed; a prompt alone is a run of one, its prefix all but
    its last token."""
    groups: list[tuple[int, int, int]] = []
    first, shared, shortest = 0, len(rows[0]), len(rows[0])
    for i in range(1, len(rows) + 1):
        if i < len(rows):
            common = len(os.path.commonprefix([rows[first][:shared], rows[i]]))
            if common >= SHARED_PREFIX and common >= (i - first - 1) * (shared - common):
                shared, shortest = common, min(shortest, len(rows[i]))
                continue
        groups.append((first, i, min(shared, shortest - 1)))
        if i < len(rows):
            first, shared, shortest = i, len(rows[i]), len(rows[i])
    return groups


def prompt_forward(model, ids: torch.Tensor, mask: torch.Tensor, pad_id: int):
    """The prompts' forward for decoding (left-padded `ids`): (the last position's logits [n, V],
    the KV cache, the attention mask, the last position [n, 1]). Each run of prompts that share a
    prefix (`prefix_groups`; a batch may hold several, e.g. word problems of four kinds) has its
    prefix go through the model once, in one forward of the runs' prefixes, its cache gathered
    for each prompt of the run; then each prompt's rest: [pad][its run's prefix][pad][rest]."""
    rows = [ids[i][mask[i].bool()].tolist() for i in range(ids.shape[0])]
    groups = prefix_groups(rows)
    if len(groups) == len(rows) or min(s for _, _, s in groups) < 1:  # nothing shared: one plain forward
        position = (mask.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, **last_logits(model))
        return out.logits[:, -1], output_cache(out), mask, position[:, -1:]
    span = max(s for _, _, s in groups)
    head = ids.new_full((len(groups), span), pad_id)
    head_mask = torch.zeros_like(head)
    for g, (first, _, s) in enumerate(groups):
        head[g, span - s :] = ids.new_tensor(rows[first][:s])
        head_mask[g, span - s :] = 1
    out = model(
        input_ids=head,
        attention_mask=head_mask,
        position_ids=(head_mask.cumsum(1) - 1).clamp(min=0),
        use_cache=True,
        **last_logits(model),
    )
    cache = output_cache(out)
    of_row = [g for g, (first, end, _) in enumerate(groups) for _ in range(first, end)]
    cache.batch_select_indices(torch.tensor(of_row, device=ids.device))  # each prompt gets its run's prefix
    skip = [groups[g][2] for g in of_row]
    width = max(len(r) - s for r, s in zip(rows, skip))
    rest = ids.new_full((len(rows), width), pad_id)
    rest_mask = torch.zeros_like(rest)
    for i, (r, s) in enumerate(zip(rows, skip)):
        rest[i, width - len(r) + s :] = ids.new_tensor(r[s:])
        rest_mask[i, width - len(r) + s :] = 1
    mask = torch.cat([head_mask[of_row], rest_mask], 1)
    position = torch.tensor(skip, device=ids.device)[:, None] + (rest_mask.cumsum(1) - 1).clamp(min=0)
    out = model(
        input_ids=rest,
        attention_mask=mask,
        position_ids=position,
        use_cache=True,
        **last_logits(model),
        **{cache_key(model): cache},
    )
    return out.logits[:, -1], output_cache(out), mask, position[:, -1:]


def next_tokens(logits: torch.Tensor, temps: torch.Tensor, draws: RowDraws, rows: list[int]) -> torch.Tensor:
    """One token per row: drawn from the softmax at the row's temperature (Gumbel-max, from the
    stream of the answer `rows[b]`), or its argmax where that is 0. Greedy rows draw nothing."""
    greedy = logits.argmax(-1, keepdim=True)
    hot = temps > 0
    if not hot.any():
        return greedy
    noise = torch.zeros_like(logits, dtype=torch.float32)
    hot_rows = hot.nonzero().flatten().tolist()
    noise[hot_rows] = draws.gumbel([rows[b] for b in hot_rows], logits.shape[-1]).to(logits.device)
    scaled = logits.float() / torch.where(hot, temps, 1.0)[:, None]
    drawn = (scaled + noise).argmax(-1, keepdim=True)
    return torch.where(hot[:, None], drawn, greedy)


class RowDraws:
    """One random stream per answer of a batch (`row_seed`: the prompt's index in the call and the
    sample's index among its k), so an answer's draws do not depend on the batch it is in. Each
    step takes one Gumbel variable per vocabulary entry from a row's stream: argmax(logits / T +
    Gumbel) is a draw from softmax(logits / T). Every row still sampling draws at every step, so
    a row's s-th draw is the call's s-th step; the uniforms are drawn `block` steps at a time (a
    small vocabulary then costs one call per answer, not one per token)."""

    def __init__(self, seed: int, prompts: list[int], k: int, greedy_first: bool = False, steps: int = 1):
        first = 1 if greedy_first else 0  # the greedy row draws nothing; samples count from 0
        self.seeds = [row_seed(seed, i, r - first) for i in prompts for r in range(k)]
        self.steps, self.step = steps, 0
        self.streams: dict[int, torch.Generator] = {}
        self.buffer: torch.Tensor | None = None  # [rows, block, vocab] uniforms

    def gumbel(self, rows: list[int], vocab: int) -> torch.Tensor:
        block = max(1, min(self.steps, 2**16 // vocab))  # a function of the model and the cap alone
        at = self.step % block
        if self.buffer is None:
            self.buffer = torch.empty(len(self.seeds), block, vocab)
        if at == 0:  # the next block of every row still sampling
            for r in rows:
                stream = self.streams.setdefault(r, torch.Generator().manual_seed(self.seeds[r]))
                self.buffer[r] = torch.rand(block, vocab, generator=stream)
        self.step += 1
        return -torch.log(-torch.log(self.buffer[torch.tensor(rows), at]))


class GumbelPick(LogitsProcessor):
    """`generate`'s sampling made the compact decoder's: each row's token is picked here from the
    answer's own stream (the logits left are that token's alone, so `generate`'s own draw can
    only take it). Runs before `generate`'s temperature, so it divides by it itself."""

    def __init__(self, draws: RowDraws, temperature: float):
        self.draws, self.temperature = draws, temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        noise = self.draws.gumbel(list(range(scores.shape[0])), scores.shape[-1]).to(scores.device)
        pick = (scores.float() / self.temperature + noise).argmax(-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter_(1, pick, 0.0)


class StopAt(StoppingCriteria):
    """Ends each row of a batch once its new text matches a stop pattern (HF pads it from then on)."""

    def __init__(self, tokenizer, patterns: list[re.Pattern], width: int):
        self.tokenizer, self.patterns, self.width = tokenizer, patterns, width

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor([first_stop(self.patterns, t) is not None for t in texts], device=input_ids.device)


def shared_prompt_cache(model, ids: torch.Tensor, mask: torch.Tensor, k: int) -> dict:
    """`generate`'s KV cache of all but the last prompt token, computed once per prompt and
    repeated for its k samples: the k copies of a prompt in the batch would otherwise each go
    through the model (SmolLM2 at k=4 with 110-token prompts: the prompts cost more than 64 new
    tokens). `generate` then feeds only the last prompt token. {} where it cannot help (k=1, a
    one-token prompt) or the model takes no cache."""
    key = cache_key(model)
    if k == 1 or ids.shape[1] < 2 or key is None:
        return {}
    position = (mask.cumsum(1) - 1).clamp(min=0)  # as generate counts positions under left padding
    head = model(
        input_ids=ids[:, :-1],
        attention_mask=mask[:, :-1],
        position_ids=position[:, :-1],
        use_cache=True,
        **last_logits(model),
    )
    cache = output_cache(head)
    if cache is None or not hasattr(cache, "batch_repeat_interleave"):
        return {}
    cache.batch_repeat_interleave(k)
    return {key: cache}
