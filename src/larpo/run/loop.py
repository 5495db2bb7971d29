"""The regenerate/rerank callback: Algorithm 1 of the paper as a Lightning callback.

At the start of each iteration the current policy (the behaviour policy) samples candidates
(`CandidateSampler`), the reward model ranks them and earlier iterations' candidates are merged in
(memorization), positives and negatives are chosen (`Ranker`), reference log-probs are computed
once (`ReferenceLogps`), the pool is written (`PoolStore`), and the datamodule gets the new lists.
Lightning then reloads the dataloader and trains for `plan.epochs_per_iteration` epochs. After each
iteration the policy is evaluated by the gold judge (`Evaluator`).
"""

from __future__ import annotations

import logging
import math
import os
import resource
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl

from larpo import memory
from larpo.candidates import CandidateList, PoolStore
from larpo.evaluation import cache as eval_cache
from larpo.evaluation.evaluator import Evaluator
from larpo.evaluation.list_stats import list_statistics
from larpo.models.policy import load_policy
from larpo.parallel.shard import Shard
from larpo.run.datamodule import ListDataModule
from larpo.run.ranking import Ranker
from larpo.run.reference import ReferenceLogps
from larpo.run.sampling import CandidateSampler, GivenLists

log = logging.getLogger("larpo")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux counts kB, macOS bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


@dataclass(frozen=True)
class Plan:
    """How many iterations, how long each trains, when to evaluate, where checkpoints go."""

    iterations: int
    epochs_per_iteration: int
    evaluate_every: bool = True
    checkpoint_dir: Path | None = None
    table_rows: int = 8  # ranked lists shown in the logger's table per iteration
    sharpen: tuple[float, ...] = ()  # temperatures of the sharpening-only control (iteration 0)
    sft_evaluation: Path | None = None  # the SFT policy's cached evaluation (run/eval_cache.py)


HEADLINE = ("win_rate_vs_sft", "accuracy_sampled", "accuracy_greedy")  # the gold judge's, logged each evaluation
JUDGED = ("judge_win_rate_vs_sft", "judge_lc_win_rate_vs_sft", "judge_score", "response_tokens")  # eval.judge's


# what to do about the reason that dropped the most lists or candidates
REMEDY = {
    "all_tied": "the reward model gave every candidate of a list the same reward; raise the temperature or "
    "candidate_list.size, use a reward model that separates the samples, or, where the data has reference "
    "answers (GSM8K-style), put the reference on top of each list with negatives=hardest",
    "too_few_candidates": "fewer than 2 distinct non-empty candidates per list; raise candidate_list.size or the "
    "temperature",
    "truncated": "samples cut at generator.max_new_tokens were dropped (candidate_list.drop_truncated); raise it",
    "empty_response": "the samples were empty; check the prompt format (chat template) and generator.max_new_tokens",
    "nonfinite_reward": "the reward model returned NaN or infinite rewards",
}


def why_dropped(n_lists: int, dropped: dict) -> str:
    """The real cause of an iteration with no list to train on, in one line."""
    if n_lists == 0:
        return "there are no training prompts (check data.path, data.prompts_per_iteration and data.eval_prompts)"
    reason = max(dropped, key=dropped.get) if dropped else None
    return f"all {n_lists} lists were dropped ({dict(dropped)}): {REMEDY.get(reason, 'see the counts')}"


def mostly_dropped(dropped: dict, kept: int) -> str | None:
    """When more lists were dropped as tied or too small than kept (most sampling wasted), why and
    what helps."""
    lost = {k: v for k, v in dropped.items() if k in ("all_tied", "too_few_candidates")}
    if not lost or sum(lost.values()) <= kept:
        return None
    reason = max(lost, key=lost.get)
    return f"{sum(lost.values())} lists dropped against {kept} kept ({dict(lost)}): {REMEDY[reason]}"


class LarpoLoop(pl.Callback):
    def __init__(
        self,
        sampler: CandidateSampler | GivenLists,
        ranker: Ranker,
        reference: ReferenceLogps,
        pool: PoolStore,
        evaluator: Evaluator | None,
        datamodule: ListDataModule,
        plan: Plan,
        started: float | None = None,
        phases: dict[str, float] | None = None,
        judge: Callable[[str, str], float] | None = None,
    ):
        """`started`: when the run began (perf_counter; wall time counts from there); `phases`:
        seconds already spent before the loop (SFT, reward model); `judge`: the gold judge, for
        the list statistics only (never for training)."""
        super().__init__()
        self.sampler, self.ranker, self.reference, self.pool = sampler, ranker, reference, pool
        self.evaluator, self.datamodule, self.plan = evaluator, datamodule, plan
        self._dropped: dict = {}
        self._lists: dict = {}  # list statistics of the current iteration
        self.judge = judge
        self.history: list[dict[str, CandidateList]] = []  # per iteration, prompt -> admitted scored list
        self.sampled: dict[str, CandidateList] = {}  # the latest iteration's samples as generated and scored
        self.metrics: list[dict] = []
        self.timing: dict[str, float] = defaultdict(float, phases or {})
        self.rss_rise: dict[str, float] = defaultdict(float)  # MB each phase raised the process's peak by
        self.iteration = 0
        self.started = time.perf_counter() if started is None else started
        self.wall_before = 0.0  # wall seconds of the run before it was resumed
        self._epoch_start = 0.0
        self._epoch_rss = 0.0
        self.shard = Shard()  # set at fit start
        self.resuming = False  # fit sets it when a checkpoint will be restored
        self._restore_on_load = False
        self.trained = 0  # the last iteration whose training finished (its last epoch ended)
        self._extend = False  # a finished run resumed with more iterations: sample the next at train start

    @property
    def tokenizer(self):
        return self.reference.tokenizer

    @property
    def iterations(self) -> int:
        return self.plan.iterations

    # --- Lightning hooks -------------------------------------------------------------------------

    def on_fit_start(self, trainer, pl_module):
        self.shard = Shard(trainer.global_rank, trainer.world_size)
        self.pool.rank = trainer.global_rank
        if self.iteration > 0:  # state restored from a checkpoint: rebuild from the pool files
            self._restore()
            return
        if self.resuming:  # FSDP restores callbacks after this hook: load_state_dict rebuilds then
            self._restore_on_load = True
            return
        policy = pl_module.full_policy()  # under FSDP a full copy, gathered once for both phases
        self._evaluate(trainer, policy, iteration=0)
        self._prepare(trainer, policy, iteration=1)

    def on_train_start(self, trainer, pl_module):
        if self._extend:  # after restore_training_state under every strategy: the weights are the run's
            self._extend = False
            self._prepare(trainer, pl_module.full_policy(), iteration=self.iteration + 1)

    def state_dict(self) -> dict:
        """Plain data only (a checkpoint loads with weights_only=True); pools live in their files."""
        return {
            "iteration": self.iteration,
            "metrics": self.metrics,
            "timing": dict(self.timing),
            "reference_forwards": self.reference.forwards,
            "dropped": self._dropped,
            "list_stats": self._lists,
            "trained": self.trained,
            "wall": self.wall_before + time.perf_counter() - self.started,
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration, self.metrics = state["iteration"], state["metrics"]
        self.reference.forwards, self._dropped = state["reference_forwards"], state["dropped"]
        self._lists = state.get("list_stats", {})
        # checkpoints from before `trained` was kept: a run whose last evaluation is of its current
        # iteration had finished it (mid-iteration checkpoints hold the evaluation before)
        finished = bool(self.metrics) and self.metrics[-1].get("iteration") == self.iteration
        self.trained = state.get("trained", self.iteration if finished else self.iteration - 1)
        # the phases of this session so far (SFT, reward model: cached now) are added to those before
        self.wall_before = state.get("wall", sum(state["timing"].values()))
        now = dict(self.timing)
        self.timing = defaultdict(float, state["timing"])
        for phase in ("startup", "sft", "reward_model"):
            self.timing[phase] += now.get(phase, 0.0)
        if self._restore_on_load:
            self._restore_on_load = False
            self._restore()

    def wall_times(self) -> dict[str, float]:
        """Seconds per phase, `total` wall time (across a resume) and `other`: the rest, so every
        second lands in a named phase."""
        timing = dict(self.timing)
        total = self.wall_before + time.perf_counter() - self.started
        timing["other"] = max(0.0, total - sum(timing.values()))
        timing["total"] = total
        return timing

    def memory(self) -> dict:
        """The process's peak resident memory and how much each phase raised it: the phase that
        set the peak is the one to shrink (the rest, before the loop: `startup`)."""
        peak = peak_rss_mb()
        rise = {k: round(v, 1) for k, v in self.rss_rise.items() if v > 0}
        rise["startup"] = round(max(0.0, peak - sum(self.rss_rise.values())), 1)
        return {"peak_rss_mb": round(peak, 1), "rise_mb": rise}

    def _restore(self) -> None:
        """Rebuild the evaluation baseline, the memory and the current iteration's training lists."""
        log.info("[iteration %d/%d] resuming from %s", self.iteration, self.iterations, self.pool.run_dir)
        cached = eval_cache.load(self.plan.sft_evaluation) if self.evaluator is not None else None
        if cached is not None:
            self.evaluator.load_state(cached["state"])
        elif self.evaluator is not None:  # the SFT policy's answers are the win-rate opponents
            sft, _ = load_policy(self.reference.initial_path)
            self.evaluator.set_baseline(sft, self.tokenizer)
            del sft
        self.history = []
        for s in range(1, self.iteration + 1):
            sampled = [lst.subset([i for i, it in enumerate(lst.sampled_in) if it == s]) for lst in self.pool.read(s)]
            self.history.append({lst.prompt: lst for lst in sampled})
        items = []
        for lst in self.pool.read(self.iteration):
            if lst.kept:
                item = self.reference.tokenised([self.ranker.for_training(lst.subset(lst.kept))])[0]
                item.ref_logps = lst.ref_logps
                items.append(item)
        self.datamodule.set_lists(items)
        # a finished run given more iterations (`larpo resume=<run> iterations=N`): its last
        # iteration is trained and evaluated, so the next one is sampled before training goes on
        self._extend = self.trained == self.iteration < self.iterations

    def _checkpoint(self, trainer) -> None:
        """Save the trainer state (policy, optimizer, loops, this callback) atomically."""
        if self.plan.checkpoint_dir is None:
            return
        path = self.plan.checkpoint_dir / "last.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer and loops too
        if trainer.is_global_zero:  # only rank zero moves it (every rank has written its part)
            if path.is_dir():  # FSDP: a distributed checkpoint is a folder of shards
                shutil.rmtree(path)
            os.replace(tmp, path)

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()
        self._epoch_rss = peak_rss_mb()
        log.info(
            "[iteration %d/%d] training: epoch %d/%d",
            self.iteration,
            self.iterations,
            trainer.current_epoch % self.plan.epochs_per_iteration + 1,
            self.plan.epochs_per_iteration,
        )

    def on_train_epoch_end(self, trainer, pl_module):
        self.timing["training"] += time.perf_counter() - self._epoch_start
        self.rss_rise["training"] += peak_rss_mb() - self._epoch_rss
        if (trainer.current_epoch + 1) % self.plan.epochs_per_iteration == 0:
            self.trained = self.iteration
            policy = pl_module.full_policy()  # under FSDP a full copy, gathered once for both phases
            if self.plan.evaluate_every or self.iteration == self.iterations:
                self._evaluate(trainer, policy, iteration=self.iteration)
            if self.iteration < self.iterations:
                self._prepare(trainer, policy, iteration=self.iteration + 1)
        self._checkpoint(trainer)

    # --- phases ----------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, phase: str, iteration: int):
        """Log the phase and add its wall time to `timing[phase]`."""
        log.info("[iteration %d/%d] %s", iteration, self.iterations, phase)
        start, rss = time.perf_counter(), peak_rss_mb()
        try:
            yield
        finally:
            self.timing[phase] += time.perf_counter() - start
            self.rss_rise[phase] += peak_rss_mb() - rss
            memory.trim()  # what the phase freed goes back to the OS before the next one

    def _prepare(self, trainer, policy, iteration: int) -> None:
        """Sample, rank and select with `policy` (the full weights: ranks sample different prompts)."""
        self.iteration = iteration
        generator = getattr(self.sampler, "generator", None)
        before = (getattr(generator, "sequences", 0), getattr(generator, "truncated", 0))
        with self._timed("generation", iteration):
            current = self.sampler.lists(policy, iteration, self.shard)
        made = getattr(generator, "sequences", 0) - before[0]
        truncated = (getattr(generator, "truncated", 0) - before[1]) / made if made else None
        if not self.sampler.scored:
            with self._timed("scoring", iteration):
                self.ranker.score(list(current.values()), self.shard)
        self.sampled, samples = current, self._samples(current)
        admitted, dropped = self.ranker.admit(current)
        self.history.append(admitted)
        merged = self.ranker.merge(self.history)
        if self.ranker.rescores_merged:
            with self._timed("scoring", iteration):  # list-relative scores change with the list
                self.ranker.score(list(merged.values()), self.shard)
        ranked = self.ranker.select(merged, dropped)
        if not ranked.kept:
            raise RuntimeError(
                f"iteration {iteration}: nothing to train on: {why_dropped(len(merged), ranked.dropped)}"
            )
        if self.reference.mode == "none":  # the objective needs no reference: no pass, no phase
            items = self.reference.training_lists(ranked.kept, policy, self.shard)
        else:
            with self._timed("reference", iteration):
                items = self.reference.training_lists(ranked.kept, policy, self.shard)
        for lst, item in zip(ranked.kept_in_pool, items, strict=True):
            lst.ref_logps = item.ref_logps  # in the pool, so a resumed run needs no recomputation
        self.pool.write(iteration, ranked.pool)
        self.datamodule.set_lists(items)
        self._dropped = dict(ranked.dropped)
        self._lists = list_statistics(ranked.pool, len(ranked.kept), self.judge) | samples
        self._lists |= self._kept_lengths(ranked.kept)
        if truncated is not None:
            self._lists["truncated"] = truncated
            if truncated > 0.1:
                log.warning(
                    "[iteration %d/%d] %.0f%% of the samples hit generator.max_new_tokens=%s before ending; "
                    "they are ranked as they are (trained without EOS): raise generator.max_new_tokens, or drop "
                    "them (candidate_list.drop_truncated=true) or penalise them (candidate_list.missing_eos_penalty)",
                    iteration,
                    self.iterations,
                    100 * truncated,
                    getattr(generator, "max_new_tokens", "?"),
                )
        self.pool.write_stats(iteration, {"iteration": iteration, "dropped": self._dropped, **self._lists})
        log.info(
            "[iteration %d/%d] %d lists to train on, dropped %s; samples: mean reward %.3f, %.1f tokens",
            iteration,
            self.iterations,
            len(items),
            self._dropped or "none",
            self._lists.get("sample_reward", math.nan),
            self._lists.get("sample_tokens", math.nan),
        )
        wasted = mostly_dropped(self._dropped, len(items))
        if wasted:
            log.warning("[iteration %d/%d] %s", iteration, self.iterations, wasted)
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {"data/lists": len(items), **{f"data/dropped_{k}": v for k, v in self._dropped.items()}}
                | {f"lists/{k}": v for k, v in self._lists.items() if not isinstance(v, dict)},
                step=trainer.global_step,
            )
        self._log_table(trainer, iteration, ranked.kept)

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

    def _evaluate(self, trainer, policy, iteration: int) -> None:
        if self.evaluator is None:
            return
        with self._timed("evaluation", iteration):
            metrics = self._evaluate_sft(policy) if iteration == 0 else self.evaluator(policy, self.tokenizer)
        row = {"iteration": iteration, **metrics}
        if iteration > 0:
            row["dropped"] = self._dropped
            row["list_stats"] = self._lists
        self.metrics.append(row)
        shown = [*HEADLINE, f"pass_at_{self.evaluator.k}", *JUDGED]
        log.info(
            "[iteration %d/%d] evaluation: %s",
            iteration,
            self.iterations,
            ", ".join(f"{m} {metrics[m]:.3f}" for m in shown if isinstance(metrics.get(m), int | float)),
        )
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {f"eval/{k}": v for k, v in metrics.items()} | {"iteration": iteration},
                step=trainer.global_step,
            )

    def _evaluate_sft(self, policy) -> dict:
        """The SFT policy's metrics and the sharpening-only control (the SFT policy at lower
        temperatures), from the cache when a job with the same policy and evaluation made them."""
        cached = eval_cache.load(self.plan.sft_evaluation)
        if cached is not None:
            self.evaluator.load_state(cached["state"])
            log.info("[iteration 0/%d] SFT evaluation from the cache: %s", self.iterations, self.plan.sft_evaluation)
            return cached["metrics"]
        metrics = self.evaluator(policy, self.tokenizer)
        for t in self.plan.sharpen:
            control = self.evaluator.sharpened(policy, self.tokenizer, t)
            metrics |= {f"sft_T{t:g}_{k}": v for k, v in control.items()}
        if self.plan.sft_evaluation is not None:
            eval_cache.save(self.plan.sft_evaluation, metrics, self.evaluator.state())
        return metrics

    def _log_table(self, trainer, iteration: int, kept: list[CandidateList]) -> None:
        log_table = getattr(trainer.logger, "log_table", None)
        if log_table is None:
            return
        rows = [
            [iteration, lst.prompt, " | ".join(lst.responses), " | ".join(f"{w:.3g}" for w in lst.rewards)]
            for lst in kept[: self.plan.table_rows]
        ]
        log_table(key="ranked_lists", columns=["iteration", "prompt", "responses", "rewards"], data=rows)
