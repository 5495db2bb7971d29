"""Where each iteration's candidates come from: the behaviour policy's samples (`Sampler`), or
given ranked lists (`GivenLists`, offline training). Both return {prompt: CandidateList}."""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict

from larpo.candidates import CandidateList, concat
from larpo.distributed import Shard
from larpo.source import Source


class Sampler:
    """k samples per prompt at this iteration's temperatures, plus the reference answer and
    foreign negatives where the negatives strategy asks for them. Scores come later (the ranker)."""

    scored = False

    def __init__(
        self,
        generator,
        tokenizer,
        source: Source,
        strategy,
        k: int,
        temperature: float,
        temperatures: list[float] | None = None,
        schedule: list[float] | None = None,
        foreign_per_list: int = 1,
        seed: int = 0,
    ):
        self.generator, self.tokenizer, self.source, self.strategy = generator, tokenizer, source, strategy
        self.k, self.temperature, self.temperatures, self.schedule = k, temperature, temperatures, schedule
        self.foreign_per_list, self.seed = foreign_per_list, seed
        self.prompts = source.train

    def temperatures_of(self, iteration: int) -> list[float]:
        """The temperature of each of the k samples of this iteration. A negatives strategy with a
        temperature of its own (hard, hardest) replaces the run's temperature."""
        if self.strategy.temperature is not None:
            return [self.strategy.temperature] * self.k
        if self.temperatures:
            return list(self.temperatures)
        t = self.schedule[min(iteration, len(self.schedule)) - 1] if self.schedule else self.temperature
        return [t] * self.k

    def _generate(self, policy, iteration: int, shard: Shard):
        temps = self.temperatures_of(iteration)
        samples = [[] for _ in self.prompts]
        sample_temps = [[] for _ in self.prompts]
        for t, count in Counter(temps).items():  # one generate call per distinct temperature
            out = self.generator(
                policy,
                self.tokenizer,
                self.prompts,
                count,
                t,
                seed=self.seed * 1009 + iteration * 31 + int(t * 100),
                desc=f"generate T={t}",
                shard=(shard.rank, shard.world),
            )
            out = shard.gather({i: rs for i, rs in enumerate(out) if rs is not None}, len(out))
            for i, rs in enumerate(out):
                samples[i] += rs
                sample_temps[i] += [t] * count
        return samples, sample_temps

    def lists(self, policy, iteration: int, shard: Shard) -> dict[str, CandidateList]:
        rng = random.Random(self.seed * 7919 + iteration)
        samples, temps = self._generate(policy, iteration, shard)
        foreign = self.strategy.foreign(self.prompts, samples, self.foreign_per_list, rng, self.source.unrelated)
        reference = self.source.reference if self.strategy.uses_reference else None
        current = {}
        for p, rs, ts, fs in zip(self.prompts, samples, temps, foreign, strict=True):
            ref = reference(p) if reference else None
            head = [ref] if ref is not None else []
            current[p] = CandidateList(
                p,
                head + rs + fs,
                [],
                [0.0] * len(head) + ts + [float("nan")] * len(fs),
                [iteration] * (len(head) + len(rs) + len(fs)),
                ["reference"] * len(head) + ["policy"] * len(rs) + [self.strategy.source] * len(fs),
                iteration,
                self.source.reference(p) if self.source.reference else None,
            )
        return current


class GivenLists:
    """Offline training (`data=lists`): the given ranked lists, as read from the file."""

    scored = True

    def __init__(self, given: list[CandidateList]):
        self.given = given
        self.prompts = sorted({lst.prompt for lst in given})

    def lists(self, policy, iteration: int, shard: Shard) -> dict[str, CandidateList]:
        by_prompt: dict[str, list[CandidateList]] = defaultdict(list)
        for lst in self.given:  # a prompt given twice becomes one list with both
            lst = copy.copy(lst)
            lst.iteration, lst.sampled_in = iteration, [iteration] * len(lst)
            by_prompt[lst.prompt].append(lst)
        return {p: concat(parts) for p, parts in by_prompt.items()}
