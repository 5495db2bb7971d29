"""What the embedded worlds share about their prompts: a seeded stream, held-out prompts excluded,
and, where asked, each prompt once."""

from __future__ import annotations

import random


class SeededPrompts:
    """A task's prompts from `sample_prompt(rng)` (the task's own), as a reproducible stream."""

    def sample_prompt(self, rng: random.Random) -> str:
        raise NotImplementedError

    def prompts(self, n: int, seed: int, exclude: set[str] | None = None, distinct: bool = False) -> list[str]:
        """n prompts from a seeded stream, skipping any in `exclude` (held-out prompts); with
        `distinct`, each prompt once (held-out prompts, and training prompts of an iteration)."""
        rng, out, seen = random.Random(seed), [], set()
        while len(out) < n:
            p = self.sample_prompt(rng)
            if (exclude is None or p not in exclude) and not (distinct and p in seen):
                out.append(p)
                seen.add(p)
        return out

    def held_out(self, n: int, seed: int) -> list[str]:
        """The held-out pool: distinct seeded prompts that SFT and training prompts never include."""
        return self.prompts(n, seed=seed, distinct=True) if n else []
