"""Every option of every config group composes, validates and builds; the CLI prints a config."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from larpo import objectives
from larpo.train import validate
from larpo.worlds.arithmetic import build_tokenizer

GROUPS = sorted(p.name for p in Path(CONF).iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((Path(CONF) / g).glob("*.yaml"))]


def test_the_groups_users_expect_exist():
    expected = {
        "objective",
        "negatives",
        "candidate_list",
        "model",
        "reward_model",
        "data",
        "generator",
        "trainer",
        "logger",
        "experiment",
    }
    assert expected <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option, tmp_path):
    needs = []
    if (group, option) == ("data", "lists"):
        needs = [f"data.path={__file__}"]
    if (group, option) == ("reward_model", "sequence_classifier"):
        build_tokenizer().save_pretrained(tmp_path / "rm")
        needs = [f"reward_model.path={tmp_path / 'rm'}"]
    cfg = compose_cfg([f"{group}={option}", *needs], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert resolved[group] if group != "experiment" else resolved["objective"]
    if group == "objective":
        assert cfg.objective.name == option
        objectives.build(cfg.objective.name, sft_weight=cfg.objective.sft_weight, **cfg.objective.hparams)
    validate(cfg)


def test_top_level_knobs_reach_the_objective(tmp_path):
    cfg = compose_cfg(["objective=listmle", "beta=0.3", "sft_weight=0.0"], tmp_path)
    assert cfg.objective.hparams.beta == 0.3 and cfg.objective.sft_weight == 0.0
    assert cfg.objective.keep.positives == 2 and cfg.objective.keep.negatives == 2
    cfg = compose_cfg(["objective=contrastive"], tmp_path)
    assert (cfg.objective.keep.positives, cfg.objective.keep.negatives) == (1, 3)


def test_cli_prints_the_composed_config():
    out = subprocess.run(
        [sys.executable, "-m", "larpo", "objective=listmle", "temperature=0.8", "--cfg", "job"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cfg = OmegaConf.create(out)
    assert cfg.temperature == 0.8 and cfg.objective.name == "listmle"
    assert {"seed", "iterations", "beta", "data", "model", "reward_model", "negatives"} <= set(cfg)
