"""Where each iteration's candidates come from: the behaviour policy's samples
(`CandidateSampler`), or given ranked lists (`GivenLists`, offline training). Both return
{prompt: CandidateList}."""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from larpo.candidates import CandidateList, concat
from larpo.data.contract import Source
from larpo.generation.contract import Cut, Generator
from larpo.negatives.contract import Strategy
from larpo.parallel.shard import Shard


@dataclass(frozen=True)
class SamplingSpec:
    """How many samples per prompt and at which temperatures: `k` at `temperature`, or one
    temperature per sample (`temperatures`), or one per iteration (`schedule`); foreign negatives
    per list; the run's seed."""

    k: int
    temperature: float
    temperatures: list[float] | None = None
    schedule: list[float] | None = None
    foreign_per_list: int = 1
    seed: int = 0


class CandidateSampler:
    """k samples per prompt at this iteration's temperatures, plus the reference answer and
    foreign negatives where the negatives strategy asks for them. Scores come later (the ranker)."""

    scored = False

    def __init__(self, generator: Generator, tokenizer, source: Source, strategy: Strategy, spec: SamplingSpec):
        self.generator, self.tokenizer, self.source, self.strategy = generator, tokenizer, source, strategy
        self.spec = spec
        self.k, self.seed = spec.k, spec.seed
        self.prompts = source.train
        self.truncated: float | None = None  # the share of the last call's samples cut at the token limit

    @property
    def max_new_tokens(self):
        return getattr(self.generator, "max_new_tokens", "?")

    def temperatures_of(self, iteration: int) -> list[float]:
        """The temperature of each of the k samples of this iteration. A negatives strategy with a
        temperature of its own (hard, hardest) replaces the run's temperature."""
        spec = self.spec
        if self.strategy.temperature is not None:
            return [self.strategy.temperature] * self.k
        if spec.temperatures:
            return list(spec.temperatures)
        t = spec.schedule[min(iteration, len(spec.schedule)) - 1] if spec.schedule else spec.temperature
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
        before = (self.generator.sequences, self.generator.truncated)  # this rank's, as generated
        samples, temps = self._generate(policy, iteration, shard)
        made = self.generator.sequences - before[0]
        self.truncated = (self.generator.truncated - before[1]) / made if made else None
        foreign = self.strategy.foreign(self.prompts, samples, self.spec.foreign_per_list, rng, self.source.unrelated)
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
                truncated=[False] * len(head) + [isinstance(r, Cut) for r in rs] + [False] * len(fs)
                if any(isinstance(r, Cut) for r in rs)
                else [],
            )
        return current


class GivenLists:
    """Offline training (`data=lists`): the given ranked lists, as read from the file."""

    scored = True
    truncated, max_new_tokens = None, None  # nothing is generated

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
