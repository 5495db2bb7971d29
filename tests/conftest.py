"""Fixtures: a micro config composed into tmp_path, one SFT cache per session, tiny hub models.
Shared code lives in `helpers/`."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of `pytest -n 2`'s workers: one core each, before torch loads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from helpers.configs import MICRO, compose_cfg  # noqa: E402

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


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
    from helpers.tiny_hub import save_policy, save_reward_model

    root = tmp_path_factory.mktemp("hub")
    corpus = [line for f in (Path(__file__).parent / "fixtures").glob("*.jsonl") for line in f.read_text().splitlines()]
    return {"policy": save_policy(root / "policy"), "reward": save_reward_model(root / "rm", corpus)}
