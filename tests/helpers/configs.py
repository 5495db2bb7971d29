"""Configs composed with Hydra's compose API and shrunk to seconds."""

from pathlib import Path

import larpo.conf
from larpo.config.compose import compose

CONF = str(Path(larpo.conf.__file__).parent)  # the configs ship inside the package

MICRO = [
    "model.arch.hidden_size=32",
    "model.arch.num_layers=2",
    "model.arch.num_heads=2",
    "model.arch.intermediate_size=64",
    "model.sft.steps=60",
    "model.sft.batch_size=32",
    "model.sft.examples=1920",
    "model.sft.warmup=10",
    "model.sft.lr=3e-3",
    "data.prompts_per_iteration=24",
    "data.eval_prompts=20",
    "eval.samples=4",
    "candidate_list.size=4",
    "batch_size=8",
    "epochs_per_iteration=1",
    "iterations=2",
    "progress=false",
    "logger=csv",
    "trainer.log_every_n_steps=1",
]


def compose_cfg(overrides=(), tmp_path=None, config_dir=None):
    cfg = compose(list(overrides), config_dir=config_dir)
    if tmp_path is not None:
        cfg.run_dir = str(tmp_path / "run")
    return cfg
