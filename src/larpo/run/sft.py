"""`larpo-sft`: build (or load) a data option's SFT policy and measure it on its held-out prompts."""

from __future__ import annotations

import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from larpo.config.schema import component
from larpo.evaluation.evaluator import policy_metrics
from larpo.generation.hf import HFGenerator
from larpo.models.policy import load_policy
from larpo.run.build import initial_policy


def sft_report(cfg: DictConfig) -> dict:
    """The SFT policy's metrics on the held-out pool (T=1, 8 samples; its own baseline)."""
    start = time.perf_counter()
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=0, seed=cfg.seed)
    model, tokenizer = load_policy(initial_policy(cfg, source))
    metrics = policy_metrics(
        model,
        tokenizer,
        source.eval,
        HFGenerator(progress=cfg.progress),
        temperature=1.0,
        k=8,
        seed=cfg.seed,
        judge=source.judge,
        reference=source.reference or (lambda p: None),
    )
    metrics = {k: round(v, 4) for k, v in metrics.items() if k != "win_rate_vs_sft"}
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    return metrics
