"""The LightningModule: log-probs of every candidate of a batch of ranked lists, then the objective."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytorch_lightning as pl
import torch

from larpo import memory
from larpo.objectives.binding import Objective, sft_term
from larpo.objectives.common import best_worst, implicit_reward, prefers
from larpo.parallel.fsdp import full_copy, is_sharded, shard_policy
from larpo.sequences import response_logps


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate's factor at each optimizer step: a linear warm-up over `warmup` steps, then
    constant, or a linear or cosine decay to 0 at `total` (the run's steps, estimated in advance:
    every iteration's lists are sampled during the run)."""

    warmup: int = 0
    total: int = 1
    kind: str = "constant"

    @property
    def constant(self) -> bool:
        return self.warmup == 0 and self.kind == "constant"

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        done = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 1.0 - done if self.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))


class LarpoModule(pl.LightningModule):
    """Trains the policy on ranked lists with a ranking objective.

    All candidates of all lists in a batch go through the policy in one forward pass; the
    reference log-probs come precomputed with the batch (no reference forward in a step).
    """

    def __init__(
        self,
        policy,
        objective: Objective,
        lr: float,
        beta: float,
        weight_decay: float = 0.0,
        schedule: LRSchedule | None = None,
    ):
        super().__init__()
        self.policy, self.objective = policy.train(), objective
        self.lr, self.beta, self.weight_decay = lr, beta, weight_decay
        self.schedule = schedule or LRSchedule()
        self.tokens = torch.zeros((), dtype=torch.long)  # real tokens trained on, for tokens/s

    def list_logps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed response log-probs, scattered into the [B, m] list layout (0 in padding)."""
        flat = response_logps(self.policy, batch)
        out = flat.new_zeros(batch["mask"].numel()).index_copy(0, batch["slots"], flat)
        return out.view_as(batch["mask"].float())

    def training_step(self, batch, batch_idx):
        self.tokens += batch["attention_mask"].sum().cpu()
        logps = self.list_logps(batch)
        mask, ref = batch["mask"], batch["ref_logps"]
        loss = self.objective(logps, ref, mask, batch["lengths"], batch["rewards"])
        self.log_signals(loss, logps, ref, batch)
        return loss

    @torch.no_grad()
    def log_signals(self, loss, logps, ref, batch) -> None:
        """What a researcher reads while training (as TRL logs it), per step and as epoch means:
        the loss and its two terms apart, the implicit rewards and log-probs of the top and bottom
        candidates, their margin and pair accuracy, and the mean log(pi / pi_ref) of the candidates
        (how far the policy has moved from its reference on them; with reference=behavior it starts
        at 0 every iteration)."""
        mask = batch["mask"]
        gamma = implicit_reward(logps, ref, mask, self.beta)
        pairs = prefers(batch["rewards"], mask)
        correct = (gamma.unsqueeze(2) > gamma.unsqueeze(1)) & pairs
        reward_top, reward_bottom = best_worst(gamma, mask)
        logp_top, logp_bottom = best_worst(logps, mask)
        nll = sft_term(logps, mask.bool(), batch["lengths"])
        signals = {
            "loss": loss,
            "nll_top": nll,
            "ranking_loss": loss - self.objective.sft_weight * nll,
            "reward_margin": (reward_top - reward_bottom).mean(),
            "reward_top": reward_top.mean(),
            "reward_bottom": reward_bottom.mean(),
            "logp_top": logp_top.mean(),
            "logp_bottom": logp_bottom.mean(),
            "pair_accuracy": correct.sum() / pairs.sum().clamp(min=1),
        }
        if ref is not None:
            signals["logratio"] = ((logps - ref) * mask).sum() / mask.sum().clamp(min=1)
        n = mask.shape[0]
        for name, value in signals.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=n, on_step=True, on_epoch=True)

    def on_before_optimizer_step(self, optimizer):
        if is_sharded(self.policy):  # each rank holds a shard of the gradients: no local total
            return
        norms = [p.grad.detach().norm(2) for p in self.policy.parameters() if p.grad is not None]
        if norms:  # before clipping: the norm the step would have had
            # one value per step: the epoch mean is over steps (batch_size=1), not weighted by lists
            norm = torch.linalg.vector_norm(torch.stack(norms))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=True, batch_size=1)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        """The step, then its gradients freed and their pages returned to the OS (Lightning would
        free them at the next step's start): a policy's gradients are as large as its weights, and
        an evaluation or generation between iterations should not find them held."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        optimizer.zero_grad(set_to_none=True)
        memory.trim()

    def configure_model(self):
        """Under `trainer=fsdp` (a ModelParallelStrategy sets the device mesh): shard the policy."""
        if self.device_mesh is not None and not is_sharded(self.policy):
            shard_policy(self.policy, self.device_mesh["data_parallel"])

    def full_policy(self):
        """The policy with all its weights: itself, or under FSDP a copy gathered from the shards
        (every rank must call this)."""
        return full_copy(self.policy) if is_sharded(self.policy) else self.policy

    def configure_optimizers(self):
        trainable = [p for p in self.policy.parameters() if p.requires_grad]  # LoRA: the adapters only
        opt = torch.optim.AdamW(trainable, lr=self.lr, weight_decay=self.weight_decay)
        if self.schedule.constant:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx):
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=batch["mask"].shape[0])
