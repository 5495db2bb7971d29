"""Every option of every config group composes, validates and builds; the CLI prints a config."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from larpo import objectives
from larpo.train import ConfigError, validate
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
        "method",
        "size",
    }
    assert expected <= set(GROUPS)


FIXTURES = Path(__file__).parent / "fixtures"
# options whose package is not installed here: validation must name the package to install
MISSING_PACKAGE = {
    ("generator", "vllm"): "pip install vllm",
    ("reward_model", "pairrm"): "pip install llm-blender",
    ("trainer", "deepspeed"): "pip install deepspeed",
}


def needs_for(group: str, option: str, tmp_path: Path) -> list[str]:
    """What an option needs from the user (a file, a path) to validate here, offline."""
    if (group, option) == ("data", "lists"):
        return [f"data.path={FIXTURES / 'ultrafeedback_rated.jsonl'}"]
    if (group, option) == ("data", "gsm8k"):
        return [
            f"data.path={FIXTURES / 'gsm8k.jsonl'}",
            "data.eval_path=null",
            "model=hf",
            f"model.path={tmp_path}",
        ]
    if (group, option) == ("data", "ultrafeedback"):
        return [f"data.path={FIXTURES / 'ultrafeedback.jsonl'}", "model=hf", f"model.path={tmp_path}"]
    if (group, option) == ("model", "hf"):
        return [f"model.path={tmp_path}"]
    if group == "reward_model" and option in ("sequence_classifier", "fsfairx"):
        build_tokenizer().save_pretrained(tmp_path / "rm")
        return [f"reward_model.path={tmp_path / 'rm'}"]
    return []


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}", *needs_for(group, option, tmp_path)], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert resolved[group] if group not in ("experiment", "method", "size") else resolved["objective"]
    if group == "objective":
        assert cfg.objective.name == option
        objectives.build(cfg.objective.name, sft_weight=cfg.objective.sft_weight, **cfg.objective.hparams)
    if (group, option) in MISSING_PACKAGE:
        with pytest.raises(ConfigError, match=MISSING_PACKAGE[group, option]):
            validate(cfg)
    else:
        validate(cfg)


PAPER_MODELS = {  # method.md / Appendix B: lr, sampling temperature; all: 3 iterations, 2 epochs, beta 0.1
    "gemma2_2b_it": (5e-7, 0.8),
    "mistral_7b_it": (5e-7, 0.8),
    "mistral_7b_base": (5e-7, 1.0),
    "mathstral_7b": (2e-7, 0.8),
}


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_models_carry_the_paper_hyperparameters(name, tmp_path):
    cfg = compose_cfg([f"model={name}"], tmp_path)
    assert (cfg.lr, cfg.temperature) == PAPER_MODELS[name]
    assert (cfg.iterations, cfg.epochs_per_iteration, cfg.beta, cfg.sft_weight) == (3, 2, 0.1, 0.0)
    assert cfg.model.dtype == "bfloat16" and cfg.model.trust_remote_code is False and cfg.model.path
    # a user override still wins over the model's preset
    assert compose_cfg([f"model={name}", "lr=1e-6"], tmp_path).lr == 1e-6


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
