"""The generator contract: how a policy samples k answers per prompt.

Each option of the `generator` group names a class with `_target_`; an instance must satisfy
`Generator`: called with the policy, its tokenizer, the prompts, k, a temperature (0: greedy),
a seed and (for data parallelism) `shard=(rank, world)`, it returns k answer texts per prompt,
None for the prompts another rank generates. `tokens` and `seconds` count its work over all calls,
`sequences` the answers generated and `truncated` those cut at `max_new_tokens` before they ended
(an answer cut short is otherwise indistinguishable from a finished one); each such answer is
returned as a `Cut` (a str), so the loop never trains it as if it had ended.
Samples are seeded per chunk of prompts (`chunk_seed`), so they do not depend on which process
draws them.
Optional: `with_greedy(model, tokenizer, prompts, k, temperature, seed, desc)` returns (each
prompt's greedy answer, its k samples) at once; the evaluation uses it where a generator has it
(the greedy and sampled answers from one forward of each prompt), two calls otherwise.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable


@runtime_checkable
class Generator(Protocol):
    tokens: int
    seconds: float
    sequences: int
    truncated: int

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
    ) -> list[list[str] | None]: ...


class Cut(str):
    """An answer that stopped at `max_new_tokens` without generating EOS (still a str)."""

    __slots__ = ()


def chunks(n_prompts: int, k: int, batch_size: int) -> list[range]:
    """Prompt index ranges, each one generate batch of about `batch_size` sequences. Chunk j is
    sampled with its own seed, so a prompt's samples do not depend on which rank draws it."""
    size = max(1, batch_size // max(1, k))
    return [range(i, min(i + size, n_prompts)) for i in range(0, n_prompts, size)]


def prefix_chunks(prompts: list[str], k: int, batch_size: int) -> list[list[int]]:
    """Prompt indices per batch of about `batch_size` sequences, the prompts in sorted order so
    that those sharing most of their text (a system message and one worked example before each
    question) are neighbours: full batches (decoding steps cost nearly as much for a few rows as
    for many), within which each run of prompts sharing a prefix has it computed once
    (`prompt_forward`). Deterministic in the prompts, so seeded per batch as `chunks`."""
    size = max(1, batch_size // max(1, k))
    order = sorted(range(len(prompts)), key=prompts.__getitem__)
    return [order[j : j + size] for j in range(0, len(order), size)]


def chunk_seed(seed: int, j: int) -> int:
    return seed * 1_000_003 + j


def row_seed(seed: int, prompt: int, sample: int) -> int:
    """The random stream of one answer: the `sample`-th of prompt `prompt` in a call seeded `seed`.
    Keyed by the answer, not the batch, so the first two of four samples are the two a k=2 call
    draws, whatever the batch size, the other prompts or the rank (arms of one seed share lists)."""
    return (chunk_seed(seed, prompt) * 1_000_033 + sample) % (2**63 - 1)


def first_stop(patterns: list[re.Pattern], text: str) -> int | None:
    """Where `text` ends under a generator's stop patterns: the end of the earliest match, or None."""
    ends = [m.end() for m in (p.search(text) for p in patterns) if m]
    return min(ends) if ends else None
