"""The SFT stage of an embedded world: train the tiny policy from scratch on the world's noisy
targets, so the starting policy is imperfect and diverse.

The result is saved with `save_pretrained` to a cache directory keyed by a hash of everything
that shapes it, and later loaded with `from_pretrained(directory)`, the code path a hub model takes.
A world's data source puts a `TinySFT` of its task in `Source.sft`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from larpo.console import interactive, progress_callbacks
from larpo.data.contract import Source
from larpo.models.policy import build_tiny_llama, n_parameters, save_atomic
from larpo.sequences import collate, encode_prompt, encode_response
from larpo.worlds.tokenizer import build_tokenizer

log = logging.getLogger(__name__)


class WorldTask(Protocol):
    """What the SFT stage needs of a world's task (a dataclass: its fields are part of the cache key)."""

    def prompts(self, n: int, seed: int, exclude: set[str] | None = None) -> list[str]: ...

    def noisy_target(self, prompt: str, rng: random.Random) -> str: ...


class SFTModule(pl.LightningModule):
    """Next-token cross-entropy on response tokens only (the prompt is given, not learned)."""

    def __init__(self, model, lr: float, warmup: int, steps: int):
        super().__init__()
        self.model, self.lr, self.warmup, self.steps = model, lr, warmup, steps

    def training_step(self, batch, _):
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        mask = batch["response_mask"][:, 1:]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1][mask], batch["input_ids"][:, 1:][mask])
        self.log("sft/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=0.01)

        def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 10%
            if step < self.warmup:
                return (step + 1) / self.warmup
            progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
            return 0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item())

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def stage_trainer(progress: bool, name: str, **limits) -> pl.Trainer:
    """A Lightning trainer for a preparatory stage (SFT, reward model): CPU, no logger or checkpoints;
    a bar named after the stage in a terminal, periodic progress lines in a log file."""
    callbacks = progress_callbacks(progress, lambda trainer: f"{name}: step {trainer.global_step}")
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=bool(callbacks) and interactive(),
        enable_model_summary=False,
        callbacks=callbacks,
        **limits,
    )


def sft_key(task: Any, eval_pool: list[int], model_cfg: DictConfig, seed: int) -> str:
    """Hash of everything that shapes the SFT checkpoint (the task, the held-out pool it must not
    see, the architecture, the SFT knobs, the seed); a changed knob gives a new cache entry."""
    parts = {
        "task": asdict(task),
        "eval": list(eval_pool),
        "arch": OmegaConf.to_container(model_cfg.arch, resolve=True),
        "sft": OmegaConf.to_container(model_cfg.sft, resolve=True),
        "seed": seed,
        "version": 2,  # 2: held-out prompts are distinct
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def train_sft(
    task: WorldTask, excluded: set[str], model_cfg: DictConfig, seed: int, out_dir: Path, progress: bool = True
) -> Path:
    """Train the tiny policy from scratch on noisy targets (never on `excluded`, the held-out
    prompts) and save it to out_dir."""
    tokenizer = build_tokenizer()
    sft = model_cfg.sft
    rng = random.Random(seed)
    prompts = task.prompts(sft.examples, seed=seed + 1, exclude=excluded)
    examples = [(encode_prompt(tokenizer, p), encode_response(tokenizer, task.noisy_target(p, rng))) for p in prompts]
    loader = DataLoader(
        examples,
        batch_size=sft.batch_size,
        shuffle=True,
        collate_fn=lambda b: collate(b, tokenizer.pad_token_id),
        generator=torch.Generator().manual_seed(seed),
    )
    model = build_tiny_llama(tokenizer, seed=seed, **model_cfg.arch)
    log.info("SFT: training a %.2fM-parameter policy for %d steps", n_parameters(model) / 1e6, sft.steps)
    pl.seed_everything(seed, verbose=False)
    trainer = stage_trainer(progress, "SFT", max_steps=sft.steps, max_epochs=-(-sft.steps // len(loader)))
    trainer.fit(SFTModule(model, sft.lr, sft.warmup, sft.steps), loader)
    return save_atomic(out_dir, model, tokenizer)


@dataclass(frozen=True)
class TinySFT:
    """A world's SFT stage (`Source.sft`): the directory of the tiny policy for a `model` node and
    a seed, trained first if it is not cached. The held-out prompts are never trained on; how
    they were drawn (`eval_prompts`, `eval_seed`) is part of the cache key."""

    task: Any
    held_out: tuple[str, ...]
    eval_prompts: int
    eval_seed: int

    def __call__(self, model_cfg: DictConfig, seed: int, progress: bool = True) -> Path:
        cache = Path(model_cfg.cache_dir).expanduser() / f"sft-{self.key(model_cfg, seed)}"
        if (cache / "config.json").exists():
            log.info("SFT: cached policy at %s", cache)
            return cache
        start = time.perf_counter()
        train_sft(self.task, set(self.held_out), model_cfg, seed, cache, progress=progress)
        log.info("SFT: trained in %.1f s, saved to %s", time.perf_counter() - start, cache)
        return cache

    def key(self, model_cfg: DictConfig, seed: int) -> str:
        return sft_key(self.task, [self.eval_prompts, self.eval_seed], model_cfg, seed)


def world_source(task, world, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int) -> Source:
    """An embedded world's `Source`: distinct held-out prompts, distinct training prompts that
    never include them, and the world's judge, reference, unrelated responses, answer window and
    SFT stage (`world`: the module-level functions of the world's task module)."""
    evaluation = task.held_out(eval_prompts, eval_seed)
    return Source(
        task.prompts(prompts_per_iteration, seed=seed + 101, exclude=set(evaluation), distinct=True),
        evaluation,
        reference=world.reference,
        judge=world.judge,
        unrelated=world.unrelated_response,
        task=task,
        sft=TinySFT(task, tuple(evaluation), eval_prompts, eval_seed),
        answers=world.window,
    )
