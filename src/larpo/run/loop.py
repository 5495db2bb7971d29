"""The regenerate/rerank callback: Algorithm 1 (run/iteration.py) on Lightning's hooks.

Before the first epoch the SFT policy is evaluated and iteration 1's lists are prepared; after
the last epoch of each iteration the policy is evaluated and the next iteration's lists are
prepared; then the trainer state is checkpointed (run/resume.py). Lightning reloads the
dataloader each epoch and trains `plan.epochs_per_iteration` epochs per iteration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl

from larpo.clock import peak_rss_mb
from larpo.parallel.shard import Shard
from larpo.run import resume
from larpo.run.datamodule import ListDataModule
from larpo.run.iteration import Evaluation, Iteration

log = logging.getLogger("larpo")


@dataclass(frozen=True)
class Plan:
    """How many iterations, how long each trains, when to evaluate, where checkpoints go."""

    iterations: int
    epochs_per_iteration: int
    evaluate_every: bool = True
    checkpoint_dir: Path | None = None
    table_rows: int = 8  # ranked lists shown in the logger's table per iteration


class LarpoLoop(pl.Callback):
    def __init__(self, step: Iteration, evaluation: Evaluation | None, datamodule: ListDataModule, plan: Plan):
        super().__init__()
        self.step, self.evaluation, self.datamodule, self.plan = step, evaluation, datamodule, plan
        self.clock = step.clock
        self.metrics: list[dict] = []
        self.iteration = 0
        self.trained = 0  # the last iteration whose training finished (its last epoch ended)
        self.shard = Shard()  # set at fit start
        self.state = resume.LoopResume()
        self._epoch_start = (0.0, 0.0)

    # the run's collaborators, for the summary and for tests
    sampler = property(lambda self: self.step.sampler)
    ranker = property(lambda self: self.step.ranker)
    reference = property(lambda self: self.step.reference)
    tokenizer = property(lambda self: self.step.tokenizer)
    sampled = property(lambda self: self.step.sampled)
    timing = property(lambda self: self.clock.timing)
    evaluator = property(lambda self: self.evaluation.evaluator if self.evaluation else None)

    @property
    def iterations(self) -> int:
        return self.plan.iterations

    def label(self, iteration: int) -> str:
        return f"[iteration {iteration}/{self.iterations}]"

    # --- Lightning hooks -------------------------------------------------------------------------

    def on_fit_start(self, trainer, pl_module):
        self.shard = Shard(trainer.global_rank, trainer.world_size)
        self.step.pool.rank = trainer.global_rank
        if self.state.at_fit_start(self):
            return
        policy = pl_module.full_policy()  # under FSDP a full copy, gathered once for both phases
        self._evaluate(trainer, policy, iteration=0)
        self._prepare(trainer, policy, iteration=1)

    def on_train_start(self, trainer, pl_module):
        if self.state.extend_now():  # after restore_training_state under every strategy: the run's weights
            self._prepare(trainer, pl_module.full_policy(), iteration=self.iteration + 1)

    def state_dict(self) -> dict:
        return self.state.save(self)

    def load_state_dict(self, state: dict) -> None:
        self.state.load(self, state)

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = (self.clock.wall(), peak_rss_mb())
        epoch = trainer.current_epoch % self.plan.epochs_per_iteration + 1
        log.info("%s training: epoch %d/%d", self.label(self.iteration), epoch, self.plan.epochs_per_iteration)

    def on_train_epoch_end(self, trainer, pl_module):
        self.clock.timing["training"] += self.clock.wall() - self._epoch_start[0]
        self.clock.rss_rise["training"] += peak_rss_mb() - self._epoch_start[1]
        if (trainer.current_epoch + 1) % self.plan.epochs_per_iteration == 0:
            self.trained = self.iteration
            policy = pl_module.full_policy()  # under FSDP a full copy, gathered once for both phases
            if self.plan.evaluate_every or self.iteration == self.iterations:
                self._evaluate(trainer, policy, iteration=self.iteration)
            if self.iteration < self.iterations:
                self._prepare(trainer, policy, iteration=self.iteration + 1)
        if self.plan.checkpoint_dir is not None:
            resume.save_checkpoint(trainer, self.plan.checkpoint_dir)

    # --- phases ----------------------------------------------------------------------------------

    def restore(self) -> None:
        """After a checkpoint: the evaluation baseline, the memory and this iteration's lists."""
        log.info("%s resuming from %s", self.label(self.iteration), self.step.pool.run_dir)
        if self.evaluation is not None:
            self.evaluation.restore(self.reference.initial_path)
        self.datamodule.set_lists(self.step.restore(self.iteration))

    def _prepare(self, trainer, policy, iteration: int) -> None:
        self.iteration = iteration
        prepared = self.step.prepare(policy, iteration, self.shard, self.label(iteration))
        self.datamodule.set_lists(prepared.items)
        if trainer.logger is None:
            return
        dropped = {f"data/dropped_{k}": v for k, v in prepared.dropped.items()}
        lists = {f"lists/{k}": v for k, v in prepared.lists.items() if not isinstance(v, dict)}
        trainer.logger.log_metrics({"data/lists": len(prepared.items), **dropped} | lists, step=trainer.global_step)
        log_table = getattr(trainer.logger, "log_table", None)
        if log_table is not None:
            rows = [
                [iteration, lst.prompt, " | ".join(lst.responses), " | ".join(f"{w:.3g}" for w in lst.rewards)]
                for lst in prepared.kept[: self.plan.table_rows]
            ]
            log_table(key="ranked_lists", columns=["iteration", "prompt", "responses", "rewards"], data=rows)

    def _evaluate(self, trainer, policy, iteration: int) -> None:
        if self.evaluation is None:
            return
        label = self.label(iteration)
        with self.clock.phase("evaluation", label):
            metrics = self.evaluation(policy, iteration, label)
        row = {"iteration": iteration, **metrics}
        if iteration > 0:
            row["dropped"], row["list_stats"] = self.step.latest.dropped, self.step.latest.lists
        self.metrics.append(row)
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {f"eval/{k}": v for k, v in metrics.items()} | {"iteration": iteration}, step=trainer.global_step
            )
