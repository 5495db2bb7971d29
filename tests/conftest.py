"""Shared fixtures: configs composed with Hydra's compose API and shrunk to seconds."""

import os
from pathlib import Path

import pytest

import larpo.conf
from larpo.config import compose

CONF = str(Path(larpo.conf.__file__).parent)  # the configs ship inside the package

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

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


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One SFT cache for the whole session: the micro policy is trained once."""
    return tmp_path_factory.mktemp("larpo-cache")


@pytest.fixture
def micro(tmp_path, cache_dir):
    """Compose a micro config (a 2-layer 32-wide policy, 24 prompts, 2 iterations) into tmp_path."""

    def make(*overrides):
        return compose_cfg([*MICRO, f"model.cache_dir={cache_dir}", *overrides], tmp_path)

    return make


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory):
    """A tiny chat policy and a tiny reward model with a different tokenizer, saved like hub models."""
    from tiny_hub import save_policy, save_reward_model

    root = tmp_path_factory.mktemp("hub")
    corpus = [line for f in (Path(__file__).parent / "fixtures").glob("*.jsonl") for line in f.read_text().splitlines()]
    return {"policy": save_policy(root / "policy"), "reward": save_reward_model(root / "rm", corpus)}
