"""`larpo`: the Hydra entry point. Compose the config, validate it, build the pieces, fit, summarise."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from transformers import AutoTokenizer

from larpo import objectives
from larpo.candidates import read_pool
from larpo.data import ListDataModule
from larpo.evaluation import Evaluator
from larpo.generation import HFGenerator
from larpo.loop import LarpoLoop
from larpo.models import load_policy, prepare_for_training
from larpo.module import LarpoModule
from larpo.negatives import STRATEGIES
from larpo.rewards import build_reward_model
from larpo.sft import eval_prompts, sft_policy_path, task_from_config
from larpo.worlds import arithmetic

CONFIG_PATH = str(Path(__file__).resolve().parents[2] / "conf")
log = logging.getLogger("larpo")
# hydra.run.dir: a resumed run continues in its own directory, a new run gets a new one
OmegaConf.register_new_resolver("larpo.run_dir", lambda resume, new: resume or new, replace=True)


class ConfigError(ValueError):
    """A config value that cannot work; the message names the value and the fix."""


def validate(cfg: DictConfig) -> None:
    """Reject a config that cannot work before any model is built or trained."""
    obj, cl = cfg.objective, cfg.candidate_list
    if cfg.iterations < 1:
        raise ConfigError(f"iterations={cfg.iterations}: use iterations >= 1")
    temps = [cfg.temperature, cfg.eval.temperature, *(cl.temperatures or []), *(cl.schedule or [])]
    if any(t <= 0 for t in temps):
        raise ConfigError(f"temperature must be > 0 for sampling, got {temps}: use e.g. temperature=1.0")
    if cfg.epochs_per_iteration < 1:
        raise ConfigError(f"epochs_per_iteration={cfg.epochs_per_iteration}: use >= 1")
    if obj.name not in objectives.OBJECTIVES:
        raise ConfigError(f"objective={obj.name}: known objectives are {', '.join(objectives.OBJECTIVES)}")
    if cfg.negatives.name not in STRATEGIES:
        raise ConfigError(f"negatives={cfg.negatives.name}: use one of {sorted(STRATEGIES)}")
    need = obj.keep.positives + (obj.keep.negatives or 1)
    k = list_size(cfg)
    if cl.size is not None and cl.size < 2:
        raise ConfigError(f"candidate_list.size={cl.size}: a list needs >= 2 samples (null: {need})")
    if cfg.negatives.name == "ranked" and k < need:
        raise ConfigError(
            f"candidate_list.size={k} is too small for objective={obj.name} with "
            f"{obj.keep.positives} positives + {obj.keep.negatives} negatives: "
            f"use candidate_list.size>={need}"
        )
    if cl.memory not in ("current", "previous", "all"):
        raise ConfigError(f"candidate_list.memory={cl.memory}: use current, previous or all")
    if cl.memory == "previous" and cfg.iterations == 1:
        warnings.warn("candidate_list.memory=previous with iterations=1 is the same as current", stacklevel=2)
    if cfg.data.name == "lists" and not cfg.data.path:
        raise ConfigError("data=lists needs a file of ranked lists: add data.path=FILE.jsonl")
    if cfg.data.get("path") and not Path(cfg.data.path).expanduser().is_file():
        raise ConfigError(f"data.path={cfg.data.path} does not exist: give the path of an existing file")
    if cfg.reward_model.name == "sequence_classifier":
        check_reward_tokenizer(cfg.reward_model)
    if cfg.reference not in ("behavior", "initial", "none"):
        raise ConfigError(f"reference={cfg.reference}: use behavior, initial or none")
    if cfg.reference == "none" and obj.name not in objectives.REFERENCE_FREE:
        raise ConfigError(
            f"objective={obj.name} needs a reference model but reference=none: use reference=behavior "
            f"or a reference-free objective ({', '.join(sorted(objectives.REFERENCE_FREE))})"
        )
    objectives.build(obj.name, sft_weight=obj.sft_weight, **obj.hparams)  # unknown hparams fail here


def list_size(cfg: DictConfig) -> int:
    """Samples per prompt per iteration: candidate_list.size, the length of its per-sample
    temperatures, or (size=null) exactly as many as the objective keeps (the paper's Table 3)."""
    cl, keep = cfg.candidate_list, cfg.objective.keep
    if cl.temperatures:
        return len(cl.temperatures)
    return cl.size if cl.size is not None else keep.positives + (keep.negatives or 1)


def schedule(cfg: DictConfig) -> tuple[int, int]:
    """(iterations, prompts per iteration). `offline=true` samples every iteration's prompts once
    from the SFT policy and trains one round: the same lists and steps, none of them on-policy."""
    if cfg.get("offline"):
        return 1, cfg.data.prompts_per_iteration * cfg.iterations
    return cfg.iterations, cfg.data.prompts_per_iteration


def check_reward_tokenizer(rm: DictConfig) -> None:
    """Load the reward model's tokenizer now (it is small) so a bad path fails before any training."""
    if not rm.path:
        raise ConfigError("reward_model=sequence_classifier needs reward_model.path=DIR_OR_HUB_ID")
    try:
        AutoTokenizer.from_pretrained(rm.path, trust_remote_code=rm.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"reward_model.path={rm.path}: its tokenizer cannot be loaded ({type(err).__name__}); give a "
            "directory or hub id that holds the reward model and its tokenizer"
        ) from None


def make_logger(cfg: DictConfig, run_dir: Path):
    if cfg.logger.name == "csv":
        return pl.loggers.CSVLogger(save_dir=str(run_dir), name="csv")
    os.environ.setdefault("WANDB_MODE", cfg.logger.mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    # the run id follows from the run directory, so a resumed run continues the same W&B run
    run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return pl.loggers.WandbLogger(
        id=run_id,
        resume="allow",
        project=cfg.logger.project,
        group=cfg.logger.group,
        save_dir=str(run_dir),
        offline=cfg.logger.mode == "offline",
        config=OmegaConf.to_container(cfg, resolve=True),
    )


@dataclass
class Run:
    """Everything one LarPO run is made of, built from a config but not yet fitted."""

    cfg: DictConfig
    trainer: pl.Trainer
    module: LarpoModule
    datamodule: ListDataModule
    loop: LarpoLoop
    logger: object
    timing: dict = field(default_factory=dict)
    data_report: dict = field(default_factory=dict)


def build(cfg: DictConfig, callbacks: tuple = ()) -> Run:
    """Validate `cfg` and build the policy, reward model, loop callback and Lightning trainer."""
    validate(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, verbose=False)
    timing = {}

    task = task_from_config(cfg.data)
    iterations, n_prompts = schedule(cfg)
    t = time.perf_counter()
    policy_path = str(sft_policy_path(cfg, progress=cfg.progress))
    timing["sft"] = time.perf_counter() - t
    policy, tokenizer = load_policy(policy_path, trust_remote_code=cfg.model.trust_remote_code)
    lora = OmegaConf.to_container(cfg.model.lora, resolve=True) if cfg.model.get("lora") else None
    policy = prepare_for_training(policy, cfg.model.get("gradient_checkpointing", False), lora)
    held_out = eval_prompts(cfg.data)
    given, data_report = None, {}
    if cfg.data.name == "lists":
        given, bad = read_pool(Path(cfg.data.path).expanduser())
        data_report = {"lists_read": len(given), "malformed_lines": bad}
        log.info(
            "data: %d lists read from %s, %d malformed lines skipped %s",
            len(given),
            cfg.data.path,
            len(bad),
            bad[:20],
        )
        train_prompts, reward_model = sorted({lst.prompt for lst in given}), None
    else:
        train_prompts = task.prompts(n_prompts, seed=cfg.seed + 101, exclude=set(held_out))
        reward_model = build_reward_model(cfg, task, policy_path)

    obj = cfg.objective
    objective = objectives.build(obj.name, sft_weight=obj.sft_weight, **obj.hparams)
    generator = HFGenerator(
        batch_size=cfg.generator.batch_size,
        max_new_tokens=cfg.generator.max_new_tokens,
        progress=cfg.progress,
    )
    datamodule = ListDataModule(cfg.batch_size, tokenizer.pad_token_id, cfg.seed)
    reference_answer = lambda p: str(arithmetic.true_answer(p))  # noqa: E731
    evaluator = Evaluator(
        held_out,
        arithmetic.judge,
        reference_answer,
        generator,
        k=cfg.eval.samples,
        temperature=cfg.eval.temperature,
        seed=cfg.seed + 202,
    )
    cl, negs = cfg.candidate_list, cfg.negatives
    loop = LarpoLoop(
        prompts=train_prompts,
        tokenizer=tokenizer,
        reward_model=reward_model,
        generator=generator,
        datamodule=datamodule,
        evaluator=evaluator,
        run_dir=run_dir,
        iterations=iterations,
        epochs_per_iteration=cfg.epochs_per_iteration,
        k=list_size(cfg),
        temperature=cfg.temperature,
        temperatures=cl.temperatures,
        schedule=cl.schedule,
        memory=cl.memory,
        strategy=negs.name,
        negatives_temperature=negs.get("temperature"),
        positives=obj.keep.positives,
        negatives=obj.keep.negatives or list_size(cfg) - obj.keep.positives,  # null: all the rest
        reference=cfg.reference,
        initial_policy_path=policy_path,
        seed=cfg.seed,
        reference_answer=reference_answer,
        unrelated_response=arithmetic.unrelated_response,
        given=given,
        checkpoint_dir=run_dir / "checkpoints",
        evaluate_every=cfg.eval.every_iteration,
    )
    module = LarpoModule(policy, objective, lr=cfg.lr, beta=cfg.beta)
    logger = make_logger(cfg, run_dir)
    trainer = pl.Trainer(
        max_epochs=iterations * cfg.epochs_per_iteration,
        reload_dataloaders_every_n_epochs=1,  # new lists each iteration, a seeded shuffle each epoch
        callbacks=[loop, *callbacks],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        default_root_dir=str(run_dir),
        num_sanity_val_steps=0,
        **cfg.trainer,
    )
    return Run(cfg, trainer, module, datamodule, loop, logger, timing, data_report)


def fit(r: Run) -> dict:
    """Fit a built run (with `resume` set: from `<run_dir>/checkpoints/last.ckpt` where it exists);
    write `<run_dir>/summary.json` and return the summary."""
    start = time.perf_counter()
    run_dir = Path(r.cfg.run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = bool(r.cfg.get("resume")) and ckpt.exists()
    OmegaConf.save(r.cfg, run_dir / "config.yaml", resolve=True)  # what `resume=` reads back
    if resume:
        log.info("resuming from %s", ckpt)
    r.trainer.fit(r.module, datamodule=r.datamodule, ckpt_path=ckpt if resume else None, weights_only=True)
    timing = dict(r.timing)
    timing.update(r.loop.timing)
    timing["total"] = timing.get("sft", 0.0) + time.perf_counter() - start
    timing["other"] = timing["total"] - sum(v for k, v in timing.items() if k != "total")
    gen = r.loop.generator
    throughput = {  # generation counts every generate call (sampling and evaluation)
        "generation_tokens_per_s": gen.tokens / max(gen.seconds, 1e-9),
        "training_tokens_per_s": int(r.module.tokens) / max(timing.get("training", 0.0), 1e-9),
    }
    summary = {
        "config": OmegaConf.to_container(r.cfg, resolve=True),
        "history": r.loop.metrics,
        "final": {k: v for k, v in r.loop.metrics[-1].items() if k not in ("iteration", "dropped")},
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "throughput": {k: round(v, 1) for k, v in throughput.items()},
        "reference_forwards": r.loop.reference_forwards,
        "data": r.data_report,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if r.cfg.logger.name == "wandb":
        r.logger.experiment.summary.update({f"final/{k}": v for k, v in summary["final"].items()})
        r.logger.experiment.finish()
    log.info("seconds per phase: %s", ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    log.info("tokens per second: %s", ", ".join(f"{k} {v:.0f}" for k, v in throughput.items()))
    log.info("run finished in %.0f s: %s", timing["total"], run_dir / "summary.json")
    return summary


def resumed_config(cfg: DictConfig) -> DictConfig:
    """`resume=<run_dir>`: the config that run was started with (its `config.yaml`)."""
    run_dir = Path(cfg.resume).expanduser()
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"resume={cfg.resume}: no config.yaml there; give the directory of a larpo run")
    old = OmegaConf.load(saved)
    old.run_dir, old.resume = str(run_dir), str(run_dir)
    return old


def run(cfg: DictConfig) -> dict:
    """Build and fit the LarPO run of `cfg`; returns the summary (also in summary.json)."""
    if cfg.get("resume"):
        cfg = resumed_config(cfg)
    return fit(build(cfg))


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    try:
        summary = run(cfg)
    except ConfigError as err:
        log.error("invalid config: %s", err)
        raise SystemExit(f"larpo: invalid config: {err}") from None
    return summary["final"]["win_rate_vs_sft"]


if __name__ == "__main__":
    main()
