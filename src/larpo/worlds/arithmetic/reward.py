"""The arithmetic world's learned reward model (`reward_model=learned`): a tiny sequence classifier
on the SFT policy's backbone, trained on noisy judge comparisons, cached by its config."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import asdict
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging as hf_logging

from larpo.models.policy import save_atomic
from larpo.rewards.classifier import SequenceClassifierReward
from larpo.rewards.contract import RewardContext
from larpo.worlds.arithmetic.task import (
    ArithmeticTask,
    build_tokenizer,
    judge,
    true_answer,
    unrelated_response,
)
from larpo.worlds.sft import stage_trainer

log = logging.getLogger("larpo")


class _BradleyTerry(pl.LightningModule):
    """-log sigmoid(r(better) - r(worse)) on judge comparisons with flipped labels."""

    def __init__(self, model, lr: float):
        super().__init__()
        self.model, self.lr = model.train(), lr

    def training_step(self, batch, _):
        r = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
        loss = -torch.nn.functional.logsigmoid(r[0::2] - r[1::2]).mean()
        self.log("rm/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr)


def comparison_pairs(task: ArithmeticTask, n: int, truth_share: float, label_noise: float, seed: int):
    """Pairs are the exact answer against a near miss (`truth_share` of them), two near misses, or
    a near miss against a malformed answer: the answers a policy gives. Each pair is ordered by the
    judge, then flipped with probability `label_noise`, so the reward model is an imperfect
    reranker, like a real one."""
    rng = random.Random(seed)
    pairs = []
    for prompt in task.prompts(n, seed=seed + 7):
        truth = true_answer(prompt)
        near = [str(truth + d) for d in range(-task.noise_scale, task.noise_scale + 1) if d]
        if rng.random() < truth_share:  # the exact answer against a near miss
            a, b = str(truth), rng.choice(near)
        else:  # two near misses, or a near miss against a malformed answer
            a, b = rng.sample(near, 2) if rng.random() < 0.8 else (rng.choice(near), unrelated_response(rng))
        better, worse = (a, b) if judge(prompt, a) >= judge(prompt, b) else (b, a)
        if rng.random() < label_noise:
            better, worse = worse, better
        pairs.append((prompt + better, prompt + worse))
    return pairs


def train_learned_reward(
    task: ArithmeticTask, hparams: dict, seed: int, out_dir: Path, init_path: str, progress: bool = True
) -> Path:
    """Train the reward model from the SFT policy's weights with a new scalar head; save it."""
    tokenizer = build_tokenizer()
    tokenizer.padding_side = "right"
    pairs = comparison_pairs(task, hparams["pairs"], hparams["truth_share"], hparams["label_noise"], seed)

    def collate(batch):
        return tokenizer([t for pair in batch for t in pair], padding=True, return_tensors="pt")

    loader = DataLoader(
        pairs,
        batch_size=hparams["batch_size"],
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new scalar head is "missing" from the policy's weights, by design
    model = AutoModelForSequenceClassification.from_pretrained(init_path, num_labels=1)
    hf_logging.set_verbosity(verbosity)
    pl.seed_everything(seed, verbose=False)
    trainer = stage_trainer(progress, "reward model", max_epochs=hparams["epochs"])
    trainer.fit(_BradleyTerry(model, hparams["lr"]), loader)
    return save_atomic(out_dir, model, tokenizer)


def learned_reward_path(
    task: ArithmeticTask, hparams: dict, cache_dir: str, seed: int, init_path: str, progress: bool = True
) -> Path:
    """Directory of the learned reward model, trained first if not cached (keyed by its config)."""
    key = json.dumps(
        {"task": asdict(task), "rm": hparams, "seed": seed, "init": str(init_path)},
        sort_keys=True,
        default=str,
    )
    path = Path(cache_dir).expanduser() / f"rm-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not (path / "config.json").exists():
        log.info("reward model: training the learned reward model")
        train_learned_reward(task, hparams, seed, path, init_path, progress)
    return path


def learned_reward_model(
    pairs: int,
    truth_share: float,
    label_noise: float,
    epochs: int,
    batch_size: int,
    lr: float,
    context: RewardContext,
) -> SequenceClassifierReward:
    """The learned reward model of the run's arithmetic task, trained (or loaded from the cache)."""
    hparams = dict(
        pairs=pairs,
        truth_share=truth_share,
        label_noise=label_noise,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
    )
    path = learned_reward_path(
        context.source.task, hparams, context.cache_dir, context.seed, context.policy_path, context.progress
    )
    return SequenceClassifierReward(str(path), context=context)
