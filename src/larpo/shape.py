"""The run's shape, computed once from a checked config: how many rounds of sampling, how many
prompts each, how many samples per prompt, how many of them are kept as positives and negatives,
and the optimizer steps that makes. The check (`larpo.config.rules`), the builders and the sweep's
job index all read the sizes from here, so a `null` means the same number everywhere.

Plain OmegaConf and the standard library: the command line imports it before torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import DictConfig


def list_size(cfg: DictConfig) -> int:
    """Samples per prompt per iteration: candidate_list.size, the length of its per-sample
    temperatures, or (size=null) exactly as many as the objective keeps (the paper's Table 3)."""
    cl, keep = cfg.candidate_list, cfg.objective.keep
    if cl.temperatures:
        return len(cl.temperatures)
    return cl.size if cl.size is not None else keep.positives + (keep.negatives or 1)


def negatives_kept(cfg: DictConfig) -> int:
    """Negatives kept per list: `objective.keep.negatives`, or (null) all below the positives."""
    keep = cfg.objective.keep
    return keep.negatives or list_size(cfg) - keep.positives


def validation_size(share: float, held_out: int) -> int:
    """Prompts in the validation split: `eval.validation` of the held-out ones, at least one."""
    return max(1, round(share * held_out)) if share else 0


@dataclass(frozen=True)
class Shape:
    """What one run samples and trains, in numbers. `offline=true` samples every iteration's
    prompts once from the SFT policy and trains one round: the same lists and steps, none of them
    on-policy. `steps` is estimated before any list exists (every prompt kept; lists dropped later
    only end the schedule early); `warmup` is its share of them."""

    iterations: int  # rounds of sampling and training
    prompts: int  # prompts sampled per round
    k: int  # samples per prompt
    positives: int
    negatives: int
    epochs: int  # per round
    steps: int  # optimizer steps of the whole run
    warmup: int

    @classmethod
    def of(cls, cfg: DictConfig) -> Shape:
        iterations, prompts = cfg.iterations, cfg.data.prompts_per_iteration
        if cfg.offline:
            iterations, prompts = 1, prompts * cfg.iterations
        devices = cfg.trainer.devices
        world = devices if isinstance(devices, int) and devices > 0 else 1
        per_epoch = math.ceil(prompts / (cfg.batch_size * world))
        accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
        steps = iterations * cfg.epochs_per_iteration * math.ceil(per_epoch / accumulate)
        return cls(
            iterations=iterations,
            prompts=prompts,
            k=list_size(cfg),
            positives=cfg.objective.keep.positives,
            negatives=negatives_kept(cfg),
            epochs=cfg.epochs_per_iteration,
            steps=steps,
            warmup=int(cfg.optimizer.warmup_ratio * steps),
        )
