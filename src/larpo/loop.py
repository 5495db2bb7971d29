"""The regenerate/rerank callback: Algorithm 1 of the paper as a Lightning callback.

At the start of each iteration the current policy (the behaviour policy) samples candidates, the
reward model ranks them, earlier iterations' candidates are merged in (memorization), positives and
negatives are chosen, reference log-probs are computed once, the pool is written, and the
datamodule gets the new lists. Lightning then reloads the dataloader and trains for
`epochs_per_iteration` epochs. After each iteration the policy is evaluated by the gold judge.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import random
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl

from larpo import negatives as neg
from larpo.candidates import CandidateList, all_tied, clean, concat, merge_memory, rank, read_pool, write_pool
from larpo.data import ListDataModule, TrainingList
from larpo.evaluation import Evaluator, sequence_logps
from larpo.models import load_policy
from larpo.sequences import encode_prompt, encode_response

log = logging.getLogger("larpo")


class LarpoLoop(pl.Callback):
    def __init__(
        self,
        *,
        prompts: list[str],
        tokenizer,
        reward_model,
        generator,
        datamodule: ListDataModule,
        evaluator: Evaluator | None,
        run_dir: Path,
        iterations: int,
        epochs_per_iteration: int,
        k: int,
        temperature: float,
        temperatures: list[float] | None,
        schedule: list[float] | None,
        memory: str,
        strategy: str,
        negatives_temperature: float | None,
        positives: int,
        negatives: int,
        reference: str,
        initial_policy_path: str | None,
        seed: int,
        reference_answer=None,
        unrelated_response=None,
        given: list[CandidateList] | None = None,
        checkpoint_dir: Path | None = None,
        table_rows: int = 8,
        evaluate_every: bool = True,
    ):
        super().__init__()
        self.prompts, self.tokenizer, self.reward_model = prompts, tokenizer, reward_model
        self.generator, self.datamodule, self.evaluator = generator, datamodule, evaluator
        self.run_dir, self.iterations, self.epochs = Path(run_dir), iterations, epochs_per_iteration
        self.k, self.temperature, self.temperatures, self.schedule = k, temperature, temperatures, schedule
        self.memory, self.strategy, self.negatives_temperature = memory, strategy, negatives_temperature
        self.positives, self.negatives, self.reference = positives, negatives, reference
        self.initial_policy_path, self.seed = initial_policy_path, seed
        self.reference_answer, self.unrelated_response = reference_answer, unrelated_response
        self.given, self.table_rows, self.evaluate_every = given, table_rows, evaluate_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._dropped: dict = {}
        self.history: list[dict[str, CandidateList]] = []  # per iteration, prompt -> scored list
        self.metrics: list[dict] = []
        self.timing: dict[str, float] = defaultdict(float)
        self.reference_forwards = 0  # sequences the reference model scored, all iterations
        self.iteration = 0
        self._epoch_start = 0.0
        self.rank, self.world = 0, 1  # data-parallel rank and world size, set at fit start

    # --- Lightning hooks -------------------------------------------------------------------------

    def on_fit_start(self, trainer, pl_module):
        self.rank, self.world = trainer.global_rank, trainer.world_size
        if self.iteration > 0:  # state restored from a checkpoint: rebuild from the pool files
            self._restore()
            return
        self._evaluate(trainer, pl_module, iteration=0)
        self._prepare(trainer, pl_module, iteration=1)

    def state_dict(self) -> dict:
        """Plain data only (a checkpoint loads with weights_only=True); pools live in their files."""
        return {
            "iteration": self.iteration,
            "metrics": self.metrics,
            "timing": dict(self.timing),
            "reference_forwards": self.reference_forwards,
            "dropped": self._dropped,
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration, self.metrics = state["iteration"], state["metrics"]
        self.timing = defaultdict(float, state["timing"])
        self.reference_forwards, self._dropped = state["reference_forwards"], state["dropped"]

    def _restore(self) -> None:
        """Rebuild the evaluation baseline, the memory and the current iteration's training lists."""
        log.info("[iteration %d/%d] resuming from %s", self.iteration, self.iterations, self.run_dir)
        if self.evaluator is not None:  # the SFT policy's answers are the win-rate opponents
            sft, _ = load_policy(self.initial_policy_path)
            self.evaluator.set_baseline(sft, self.tokenizer)
            del sft
        self.history = []
        for s in range(1, self.iteration + 1):
            lists, _ = read_pool(self.pool_path(s))
            sampled = [lst.subset([i for i, it in enumerate(lst.sampled_in) if it == s]) for lst in lists]
            self.history.append({lst.prompt: lst for lst in sampled})
        lists, _ = read_pool(self.pool_path(self.iteration))
        items = []
        for lst in lists:
            if lst.kept:
                item = self._tokenised([lst.subset(lst.kept)])[0]
                item.ref_logps = lst.ref_logps
                items.append(item)
        self.datamodule.set_lists(items)

    def _checkpoint(self, trainer) -> None:
        """Save the trainer state (policy, optimizer, loops, this callback) atomically."""
        if self.checkpoint_dir is None:
            return
        path = self.checkpoint_dir / "last.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer and loops too
        if trainer.is_global_zero:  # only rank zero writes the file
            os.replace(tmp, path)

    def pool_path(self, iteration: int) -> Path:
        return self.run_dir / "pool" / f"iteration_{iteration}.jsonl"

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()
        log.info(
            "[iteration %d/%d] training: epoch %d",
            self.iteration,
            self.iterations,
            trainer.current_epoch % self.epochs + 1,
        )

    def on_train_epoch_end(self, trainer, pl_module):
        self.timing["training"] += time.perf_counter() - self._epoch_start
        if (trainer.current_epoch + 1) % self.epochs == 0:
            if self.evaluate_every or self.iteration == self.iterations:
                self._evaluate(trainer, pl_module, iteration=self.iteration)
            if self.iteration < self.iterations:
                self._prepare(trainer, pl_module, iteration=self.iteration + 1)
        self._checkpoint(trainer)

    # --- phases ----------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, phase: str, iteration: int):
        """Log the phase and add its wall time to `timing[phase]`."""
        log.info("[iteration %d/%d] %s", iteration, self.iterations, phase)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timing[phase] += time.perf_counter() - start

    def sample_temperatures(self, iteration: int) -> list[float]:
        """The temperature of each of the k samples of this iteration."""
        if self.negatives_temperature is not None:
            return [self.negatives_temperature] * self.k
        if self.temperatures:
            return list(self.temperatures)
        t = self.schedule[min(iteration, len(self.schedule)) - 1] if self.schedule else self.temperature
        return [t] * self.k

    def _generate(self, policy, iteration: int) -> tuple[list[list[str]], list[list[float]]]:
        temps = self.sample_temperatures(iteration)
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
                shard=(self.rank, self.world),
            )
            out = self._gathered({i: rs for i, rs in enumerate(out) if rs is not None}, len(out))
            for i, rs in enumerate(out):
                samples[i] += rs
                sample_temps[i] += [t] * count
        return samples, sample_temps

    def _sampled_lists(self, policy, iteration: int) -> dict[str, CandidateList]:
        """This iteration's candidates: the policy's samples (plus the reference answer and foreign
        negatives where the negatives strategy asks for them), scored by the reward model."""
        rng = random.Random(self.seed * 7919 + iteration)
        with self._timed("generation", iteration):
            samples, temps = self._generate(policy, iteration)
            foreign = neg.foreign_negatives(
                self.strategy, self.prompts, samples, self.negatives, rng, self.unrelated_response
            )
        current = {}
        for p, rs, ts, fs in zip(self.prompts, samples, temps, foreign, strict=True):
            ref = self.reference_answer(p) if self.reference_answer else None
            head = [ref] if ref is not None and neg.uses_reference(self.strategy) else []
            source = neg.FOREIGN.get(self.strategy, "policy")
            current[p] = CandidateList(
                p,
                head + rs + fs,
                [],
                [0.0] * len(head) + ts + [float("nan")] * len(fs),
                [iteration] * (len(head) + len(rs) + len(fs)),
                ["reference"] * len(head) + ["policy"] * len(rs) + [source] * len(fs),
                iteration,
                ref,
            )
        with self._timed("scoring", iteration):
            self._score(list(current.values()))
        return current

    def _given_lists(self, iteration: int) -> dict[str, CandidateList]:
        """Offline training (`data=lists`): the given ranked lists, as read from the file."""
        by_prompt: dict[str, list[CandidateList]] = defaultdict(list)
        for lst in self.given:  # a prompt given twice becomes one list with both
            lst = copy.copy(lst)
            lst.iteration, lst.sampled_in = iteration, [iteration] * len(lst)
            by_prompt[lst.prompt].append(lst)
        return {p: concat(parts) for p, parts in by_prompt.items()}

    def _prepare(self, trainer, pl_module, iteration: int) -> None:
        self.iteration = iteration
        policy = pl_module.policy
        counts: Counter = Counter()
        current = (
            self._given_lists(iteration) if self.given is not None else self._sampled_lists(policy, iteration)
        )
        self.history.append(current)
        merged = merge_memory(self.history, self.memory)
        if self.reward_model is not None and self.reward_model.list_relative and self.memory != "current":
            with self._timed("scoring", iteration):  # list-relative scores change with the list
                self._score(list(merged.values()))

        pool, kept, kept_in_pool = [], [], []
        for lst in merged.values():
            lst = rank(clean(lst, counts))
            idx = neg.select(lst, self.strategy, self.positives, self.negatives)
            pool.append(lst)
            chosen = lst.subset(idx)
            if len(chosen) < 2:
                counts["too_few_candidates"] += 1
            elif all_tied(chosen):
                counts["all_tied"] += 1
            else:
                lst.kept = idx
                kept.append(chosen)
                kept_in_pool.append(lst)
        if not kept:
            raise RuntimeError(
                f"iteration {iteration}: every list was dropped ({dict(counts)}); nothing to train "
                "on. Raise candidate_list.size or the temperature, or check the reward model."
            )

        with self._timed("reference", iteration):
            items = self._training_lists(kept, policy)
        for lst, item in zip(kept_in_pool, items, strict=True):
            lst.ref_logps = item.ref_logps  # in the pool, so a resumed run needs no recomputation
        if self.rank == 0:
            write_pool(self.pool_path(iteration), pool)
        self.datamodule.set_lists(items)
        self._dropped = dict(counts)
        log.info(
            "[iteration %d/%d] %d lists to train on, dropped %s",
            iteration,
            self.iterations,
            len(items),
            dict(counts) or "none",
        )
        self._log_table(trainer, iteration, kept)

    def _gathered(self, mine: dict[int, object], n: int) -> list:
        """Every rank's {index: result} merged into one list of n results, on every rank."""
        if self.world > 1:
            import torch.distributed as dist

            parts = [None] * self.world
            dist.all_gather_object(parts, mine)
            mine = {i: v for part in parts for i, v in part.items()}
        missing = [i for i in range(n) if i not in mine]
        if missing:
            raise RuntimeError(f"data-parallel gather lost items {missing[:10]}")
        return [mine[i] for i in range(n)]

    def _mine(self, n: int) -> list[int]:
        """The indices this rank computes (round-robin, so uneven counts are no problem)."""
        return [i for i in range(n) if i % self.world == self.rank]

    def _score(self, lists: list[CandidateList]) -> None:
        """Reward-model scores; each rank scores its share of the lists and the scores are gathered."""
        idx = self._mine(len(lists))
        scores = self.reward_model.score([lists[i].prompt for i in idx], [lists[i].responses for i in idx])
        gathered = self._gathered(dict(zip(idx, scores, strict=True)), len(lists))
        for lst, s in zip(lists, gathered, strict=True):
            lst.rewards = [float(x) for x in s]

    def _tokenised(self, kept: list[CandidateList]) -> list[TrainingList]:
        return [
            TrainingList(
                encode_prompt(self.tokenizer, lst.prompt),
                [encode_response(self.tokenizer, r) for r in lst.responses],
                list(lst.rewards),
            )
            for lst in kept
        ]

    def _training_lists(self, kept: list[CandidateList], policy) -> list[TrainingList]:
        """Tokenise once and compute the reference log-probs of every kept candidate, once."""
        items = self._tokenised(kept)
        if self.reference == "none":
            return items
        if self.reference == "initial":
            ref_model, _ = load_policy(self.initial_policy_path)
            ref_model.to(policy.device)
        else:  # behavior: the current policy is this iteration's behaviour policy and reference
            ref_model = policy
        mine = self._mine(len(items))  # each rank scores its share of the lists
        seqs = [(items[i].prompt_ids, r) for i in mine for r in items[i].response_ids]
        flat = sequence_logps(ref_model, seqs, self.tokenizer.pad_token_id)  # one forward per candidate
        self.reference_forwards += len(seqs)
        per_list, start = {}, 0
        for i in mine:
            per_list[i] = flat[start : start + len(items[i].response_ids)]
            start += len(items[i].response_ids)
        for it, lps in zip(items, self._gathered(per_list, len(items)), strict=True):
            it.ref_logps = lps
        if ref_model is not policy:
            del ref_model
            gc.collect()
        return items

    def _evaluate(self, trainer, pl_module, iteration: int) -> None:
        if self.evaluator is None:
            return
        with self._timed("evaluation", iteration):
            metrics = self.evaluator(pl_module.policy, self.tokenizer)
        row = {"iteration": iteration, **metrics}
        if iteration > 0:
            row["dropped"] = self._dropped
        self.metrics.append(row)
        log.info(
            "[iteration %d/%d] evaluation: win_rate_vs_sft %.3f, accuracy_sampled %.3f, "
            "accuracy_greedy %.3f, pass_at_%d %.3f",
            iteration,
            self.iterations,
            metrics["win_rate_vs_sft"],
            metrics["accuracy_sampled"],
            metrics["accuracy_greedy"],
            self.evaluator.k,
            metrics[f"pass_at_{self.evaluator.k}"],
        )
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {f"eval/{k}": v for k, v in metrics.items()} | {"iteration": iteration},
                step=trainer.global_step,
            )

    def _log_table(self, trainer, iteration: int, kept: list[CandidateList]) -> None:
        log_table = getattr(trainer.logger, "log_table", None)
        if log_table is None:
            return
        rows = [
            [iteration, lst.prompt, " | ".join(lst.responses), " | ".join(f"{w:.3g}" for w in lst.rewards)]
            for lst in kept[: self.table_rows]
        ]
        log_table(key="ranked_lists", columns=["iteration", "prompt", "responses", "rewards"], data=rows)
