"""One iteration of Algorithm 1 as plain code, free of Lightning, read top to bottom:

    sample -> score -> admit -> merge the memory -> (rescore) -> rank and select
           -> reference log-probs -> pool file -> the items to train on and the list statistics

and the evaluation that follows each iteration's training. `LarpoLoop` (loop.py) only calls these
from Lightning's hooks; a resumed run rebuilds the same state from the pool files (`restore`).

State owned here: `history` (per iteration, prompt -> the admitted scored list: what the memory
merges), `sampled` (the latest samples as generated and scored) and the latest iteration's
`dropped` counts and list statistics.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from larpo.candidates import CandidateList, PoolStore
from larpo.clock import PhaseClock
from larpo.evaluation import cache as eval_cache
from larpo.evaluation.contract import PolicyEvaluator
from larpo.evaluation.list_stats import list_statistics
from larpo.models.policy import load_policy
from larpo.parallel.shard import Shard
from larpo.run import diagnostics
from larpo.run.ranking import Ranker
from larpo.run.reference import ReferenceLogps
from larpo.run.sampling import CandidateSampler, GivenLists

log = logging.getLogger("larpo")

HEADLINE = ("win_rate_vs_sft", "accuracy_sampled", "accuracy_greedy")  # the gold judge's, logged each evaluation
JUDGED = ("judge_win_rate_vs_sft", "judge_lc_win_rate_vs_sft", "judge_score", "response_tokens")  # eval.judge's


@dataclass
class Prepared:
    """One iteration's training data: the tokenised items, the kept lists they came from, why the
    others were dropped and the list statistics (pool stats file, logger, summary)."""

    items: list = field(default_factory=list)
    kept: list[CandidateList] = field(default_factory=list)
    dropped: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)


class Iteration:
    def __init__(
        self,
        sampler: CandidateSampler | GivenLists,
        ranker: Ranker,
        reference: ReferenceLogps,
        pool: PoolStore,
        clock: PhaseClock,
        judge: Callable[[str, str], float] | None = None,
    ):
        """`judge`: the gold judge, for the list statistics only (never for training)."""
        self.sampler, self.ranker, self.reference, self.pool, self.clock = sampler, ranker, reference, pool, clock
        self.judge = judge
        self.history: list[dict[str, CandidateList]] = []
        self.sampled: dict[str, CandidateList] = {}
        self.latest = Prepared()

    @property
    def tokenizer(self):
        return self.reference.tokenizer

    def prepare(self, policy, iteration: int, shard: Shard, label: str) -> Prepared:
        """Sample, rank and select with `policy` (the full weights: ranks sample different prompts);
        write the pool; the items to train on."""
        with self.clock.phase("generation", label):
            current = self.sampler.lists(policy, iteration, shard)
        if not self.sampler.scored:
            with self.clock.phase("scoring", label):
                self.ranker.score(list(current.values()), shard)
        self.sampled, samples = current, self._samples(current)
        admitted, dropped = self.ranker.admit(current)
        self.history.append(admitted)
        merged = self.ranker.merge(self.history)
        if self.ranker.rescores_merged:
            with self.clock.phase("scoring", label):  # list-relative scores change with the list
                self.ranker.score(list(merged.values()), shard)
        ranked = self.ranker.select(merged, dropped)
        if not ranked.kept:
            why = diagnostics.why_dropped(len(merged), ranked.dropped)
            raise RuntimeError(f"iteration {iteration}: nothing to train on: {why}")
        if self.reference.mode == "none":  # the objective needs no reference: no pass, no phase
            items = self.reference.training_lists(ranked.kept, policy, shard)
        else:
            with self.clock.phase("reference", label):
                items = self.reference.training_lists(ranked.kept, policy, shard)
        for lst, item in zip(ranked.kept_in_pool, items, strict=True):
            lst.ref_logps = item.ref_logps  # in the pool, so a resumed run needs no recomputation
        self.pool.write(iteration, ranked.pool)
        lists = list_statistics(ranked.pool, len(ranked.kept), self.judge) | samples | self._kept_lengths(ranked.kept)
        if self.sampler.truncated is not None:
            lists["truncated"] = self.sampler.truncated
        self.latest = Prepared(items, ranked.kept, dict(ranked.dropped), lists)
        diagnostics.report(label, len(items), self.latest.dropped, lists, self.sampler.max_new_tokens)
        self.pool.write_stats(iteration, {"iteration": iteration, "dropped": self.latest.dropped, **lists})
        return self.latest

    def resumed(self, dropped: dict, lists: dict) -> None:
        """The latest iteration's counts and statistics, as a checkpoint holds them."""
        self.latest = Prepared(dropped=dropped, lists=lists)

    def restore(self, iteration: int) -> list:
        """The memory of iterations 1..`iteration` and that iteration's training items, from the
        pool files (reference log-probs included: nothing is recomputed)."""
        self.history = []
        for s in range(1, iteration + 1):
            sampled = [lst.subset([i for i, it in enumerate(lst.sampled_in) if it == s]) for lst in self.pool.read(s)]
            self.history.append({lst.prompt: lst for lst in sampled})
        items = []
        for lst in self.pool.read(iteration):
            if lst.kept:
                item = self.reference.tokenised([self.ranker.for_training(lst.subset(lst.kept))])[0]
                item.ref_logps = lst.ref_logps
                items.append(item)
        return items

    def _kept_lengths(self, kept: list[CandidateList]) -> dict[str, float]:
        """The trained top and bottom candidates' mean lengths (tokens, EOS included where it was
        generated): a gap between them is a length preference the objective will learn."""
        if not kept or self.tokenizer is None:
            return {}

        def tokens(lst: CandidateList, i: int) -> int:
            return len(self.tokenizer(lst.responses[i], add_special_tokens=False)["input_ids"]) + lst.ended(i)

        return {
            "kept_top_tokens": sum(tokens(lst, 0) for lst in kept) / len(kept),
            "kept_bottom_tokens": sum(tokens(lst, len(lst) - 1) for lst in kept) / len(kept),
        }

    def _samples(self, current: dict[str, CandidateList]) -> dict[str, float]:
        """This iteration's samples: their mean reward-model score and their mean length in tokens
        (a policy that learns to answer shorter or longer shows here first)."""
        responses = [r for lst in current.values() for r in lst.responses]
        rewards = [w for lst in current.values() for w in (lst.rewards or []) if w is not None and math.isfinite(w)]
        out: dict[str, float] = {}
        if responses and self.tokenizer is not None:
            lengths = [len(ids) for ids in self.tokenizer(responses, add_special_tokens=False)["input_ids"]]
            out["sample_tokens"] = sum(lengths) / len(lengths)
        if rewards:
            out["sample_reward"] = sum(rewards) / len(rewards)
        return out


class Evaluation:
    """The held-out evaluation after each iteration's training, and the SFT policy's (iteration 0)
    with the sharpening-only control, cached for jobs with the same policy and evaluation."""

    def __init__(self, evaluator: PolicyEvaluator, tokenizer, sft_cache: Path | None, sharpen: tuple[float, ...] = ()):
        """`sft_cache`: where the SFT policy's evaluation is cached (`larpo.evaluation.cache`), or
        None; `sharpen`: the temperatures of the sharpening-only control."""
        self.evaluator, self.tokenizer, self.sft_cache, self.sharpen = evaluator, tokenizer, sft_cache, sharpen

    def __call__(self, policy, iteration: int, label: str) -> dict:
        """The metrics of `policy` after `iteration` (0: the SFT policy); the log line names the headline ones."""
        metrics = self._sft(policy, label) if iteration == 0 else self.evaluator(policy, self.tokenizer)
        passes = [m for m in metrics if m.startswith("pass_at_")]
        shown = [*HEADLINE, *passes[-1:], *JUDGED]
        numbers = ", ".join(f"{m} {metrics[m]:.3f}" for m in shown if isinstance(metrics.get(m), int | float))
        log.info("%s evaluation: %s", label, numbers)
        return metrics

    def _sft(self, policy, label: str) -> dict:
        cached = eval_cache.load(self.sft_cache)
        if cached is not None:
            self.evaluator.load_state(cached["state"])
            log.info("%s SFT evaluation from the cache: %s", label, self.sft_cache)
            return cached["metrics"]
        metrics = self.evaluator(policy, self.tokenizer)
        for t in self.sharpen:
            control = self.evaluator.sharpened(policy, self.tokenizer, t)
            metrics |= {f"sft_T{t:g}_{k}": v for k, v in control.items()}
        if self.sft_cache is not None:
            eval_cache.save(self.sft_cache, metrics, self.evaluator.state())
        return metrics

    def restore(self, initial_path: str) -> None:
        """A resumed run's win-rate opponents: the SFT policy's answers, cached or made again."""
        cached = eval_cache.load(self.sft_cache)
        if cached is not None:
            self.evaluator.load_state(cached["state"])
            return
        sft, _ = load_policy(initial_path)
        self.evaluator.set_baseline(sft, self.tokenizer)
        del sft
