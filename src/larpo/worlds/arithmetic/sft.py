"""The SFT stage of the arithmetic world: train the tiny policy from scratch on noisy targets.

The result is saved with `save_pretrained` to a cache directory keyed by a hash of everything
that shapes it, and later loaded with `from_pretrained(directory)`, the code path a hub model takes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from larpo.console import interactive, progress_callbacks
from larpo.evaluation import policy_metrics
from larpo.generation import HFGenerator
from larpo.models import build_tiny_llama, load_policy, n_parameters, save_atomic
from larpo.sequences import collate, encode_prompt, encode_response
from larpo.worlds.arithmetic.source import held_out, reference
from larpo.worlds.arithmetic.task import ArithmeticTask, build_tokenizer, judge

log = logging.getLogger(__name__)


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


def task_from_config(data_cfg: DictConfig) -> ArithmeticTask:
    """The world's task from `data.task` (its `_target_` is this class)."""
    return ArithmeticTask(**_task_keys(data_cfg))


def _task_keys(data_cfg: DictConfig) -> dict:
    task = OmegaConf.to_container(data_cfg.task, resolve=True)
    return {k: v for k, v in task.items() if k != "_target_"}


def eval_prompts(data_cfg: DictConfig) -> list[str]:
    """The held-out pool: SFT never trains on it."""
    return held_out(task_from_config(data_cfg), data_cfg.eval_prompts, data_cfg.eval_seed)


def sft_key(data_cfg: DictConfig, model_cfg: DictConfig, seed: int) -> str:
    """Hash of everything that shapes the SFT checkpoint (the task, the held-out pool it must not
    see, the architecture, the SFT knobs, the seed); a changed knob gives a new cache entry."""
    parts = {
        "task": _task_keys(data_cfg),
        "eval": [data_cfg.eval_prompts, data_cfg.eval_seed],
        "arch": OmegaConf.to_container(model_cfg.arch, resolve=True),
        "sft": OmegaConf.to_container(model_cfg.sft, resolve=True),
        "seed": seed,
        "version": 1,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def train_sft(data_cfg: DictConfig, model_cfg: DictConfig, seed: int, out_dir: Path, progress: bool = True) -> Path:
    """Train the tiny policy from scratch on noisy targets and save it to out_dir."""
    task = task_from_config(data_cfg)
    tokenizer = build_tokenizer()
    sft = model_cfg.sft
    excluded = set(eval_prompts(data_cfg))
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


def sft_policy_path(model_cfg: DictConfig, data_cfg: DictConfig, seed: int, progress: bool = True) -> Path:
    """Directory of the initial policy: `model.path`, or the world's SFT policy for this config,
    trained first if it is not cached."""
    if model_cfg.path:
        return Path(model_cfg.path)
    cache = Path(model_cfg.cache_dir).expanduser() / f"sft-{sft_key(data_cfg, model_cfg, seed)}"
    if (cache / "config.json").exists():
        log.info("SFT: cached policy at %s", cache)
        return cache
    start = time.perf_counter()
    train_sft(data_cfg, model_cfg, seed, cache, progress=progress)
    log.info("SFT: trained in %.1f s, saved to %s", time.perf_counter() - start, cache)
    return cache


def sft_metrics(model_cfg: DictConfig, data_cfg: DictConfig, seed: int, progress: bool = True) -> dict:
    """`larpo-sft`: build (or load) the SFT policy and measure it on the held-out pool."""
    start = time.perf_counter()
    model, tokenizer = load_policy(str(sft_policy_path(model_cfg, data_cfg, seed, progress)))
    metrics = policy_metrics(
        model,
        tokenizer,
        eval_prompts(data_cfg),
        HFGenerator(progress=progress),
        temperature=1.0,
        k=8,
        seed=seed,
        judge=judge,
        reference=reference,
    )
    metrics = {k: round(v, 4) for k, v in metrics.items() if k != "win_rate_vs_sft"}
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    return metrics
