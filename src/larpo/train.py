"""The composition root of a run: instantiate the config's components, fit, summarise.

`larpo` (src/larpo/cli.py) composes and checks the config, then calls `run`. Every component
is built from its own config node with `hydra.utils.instantiate`; `_partial_` targets get the
runtime objects they need here.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from transformers import AutoTokenizer

from larpo import objectives, strict_json
from larpo.candidates import PoolStore
from larpo.config import ConfigError, check, component, list_size, validation_size
from larpo.console import interactive, progress_callbacks
from larpo.data import ListDataModule
from larpo.evaluation import Evaluator, SplitEvaluator
from larpo.loop import LarpoLoop, Plan
from larpo.models import load_policy, prepare_for_training
from larpo.module import LarpoModule
from larpo.ranking import Ranker
from larpo.reference import ReferenceScorer
from larpo.rewards import RewardContext
from larpo.sampling import GivenLists, Sampler
from larpo.worlds.arithmetic.sft import sft_policy_path

log = logging.getLogger("larpo")


def schedule(cfg: DictConfig) -> tuple[int, int]:
    """(iterations, prompts per iteration). `offline=true` samples every iteration's prompts once
    from the SFT policy and trains one round: the same lists and steps, none of them on-policy."""
    if cfg.offline:
        return 1, cfg.data.prompts_per_iteration * cfg.iterations
    return cfg.iterations, cfg.data.prompts_per_iteration


def accelerator_device(trainer_cfg: DictConfig) -> str | None:
    """This process's GPU when the trainer runs on GPUs (under DDP each rank has its LOCAL_RANK)."""
    if trainer_cfg.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return None


def check_reward_tokenizer(rm: DictConfig) -> None:
    """A reward model read from a path: load its tokenizer now (it is small), so a bad path fails
    before SFT or any training."""
    if not rm.get("path") or "trust_remote_code" not in rm:
        return
    try:
        AutoTokenizer.from_pretrained(rm.path, trust_remote_code=rm.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ConfigError(
            "reward_model.path",
            rm.path,
            f"its tokenizer cannot be loaded ({type(err).__name__})",
            "give a directory or hub id that holds the reward model and its tokenizer",
        ) from None


@dataclass
class Run:
    """Everything one LarPO run is made of, built from a config but not yet fitted."""

    cfg: DictConfig
    trainer: pl.Trainer
    module: LarpoModule
    datamodule: ListDataModule
    loop: LarpoLoop
    generator: object
    data_report: dict = field(default_factory=dict)


def build(cfg: DictConfig, callbacks: tuple = ()) -> Run:
    """Check `cfg`, then build the policy, reward model, loop callback and Lightning trainer."""
    started = time.perf_counter()
    check(cfg)
    check_reward_tokenizer(cfg.reward_model)
    objective = objectives.from_config(cfg.objective)  # unknown hyperparameters fail before SFT
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, verbose=False)
    timing = {}

    iterations, n_prompts = schedule(cfg)
    t = time.perf_counter()
    policy_path = str(sft_policy_path(cfg.model, cfg.data, cfg.seed, progress=cfg.progress))
    timing["sft"] = time.perf_counter() - t
    policy, tokenizer = load_policy(policy_path, trust_remote_code=cfg.model.trust_remote_code, dtype=cfg.model.dtype)
    lora = OmegaConf.to_container(cfg.model.lora, resolve=True) if cfg.model.lora else None
    policy = prepare_for_training(policy, cfg.model.gradient_checkpointing, lora)
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=n_prompts, seed=cfg.seed)
    if source.report:
        log.info("data: %s", source.report)

    strategy = instantiate(component(cfg.negatives, "negatives"))
    keep = cfg.objective.keep
    k = list_size(cfg)
    negatives = keep.negatives or k - keep.positives  # null: all the rest
    generator = instantiate(component(cfg.generator, "generator"))
    if source.given is not None:
        sampler, reward_model = GivenLists(source.given), None
    else:
        cl = cfg.candidate_list
        sampler = Sampler(
            generator,
            tokenizer,
            source,
            strategy,
            k,
            cfg.temperature,
            cl.temperatures,
            cl.schedule,
            foreign_per_list=negatives,
            seed=cfg.seed,
        )
        t = time.perf_counter()
        context = RewardContext(
            source, policy_path, cfg.model.cache_dir, cfg.seed, accelerator_device(cfg.trainer), cfg.progress
        )
        reward_model = instantiate(component(cfg.reward_model, "reward_model"))(context=context)
        timing["reward_model"] = time.perf_counter() - t

    evaluator = None
    if source.eval and source.judge is not None:
        # eval.validation: the first held-out prompts are a validation split, the rest the test split
        n_val = validation_size(cfg.eval.validation, len(source.eval))
        test = source.eval[n_val:]
        test = test[: cfg.eval.prompts] if cfg.eval.prompts else test

        def evaluator_of(prompts: list[str], seed: int) -> Evaluator:
            reference = source.reference or (lambda p: None)
            k, temperature = cfg.eval.samples, cfg.eval.temperature
            return Evaluator(prompts, source.judge, reference, generator, k=k, temperature=temperature, seed=seed)

        evaluator = evaluator_of(test, cfg.seed + 202)
        if n_val:
            evaluator = SplitEvaluator(evaluator, evaluator_of(source.eval[:n_val], cfg.seed + 303))
    else:
        log.info("evaluation: no held-out prompts with a gold judge; export answers with larpo-generate")
    datamodule = ListDataModule(cfg.batch_size, tokenizer.pad_token_id, cfg.seed)
    loop = LarpoLoop(
        sampler,
        Ranker(reward_model, strategy, cfg.candidate_list.memory, keep.positives, negatives),
        ReferenceScorer(tokenizer, cfg.reference, policy_path),
        PoolStore(run_dir),
        evaluator,
        datamodule,
        Plan(iterations, cfg.epochs_per_iteration, cfg.eval.every_iteration, run_dir / "checkpoints"),
    )
    loop.started = started  # wall time counts from here; a resumed run adds the time before
    for phase, seconds in timing.items():
        loop.timing[phase] += seconds
    module = LarpoModule(policy, objective, lr=cfg.lr, beta=cfg.beta)
    logger = instantiate(component(cfg.logger, "logger"))
    if callable(logger) and not isinstance(logger, pl.loggers.Logger):  # `_partial_`: it wants the run config
        logger = logger(config=OmegaConf.to_container(cfg, resolve=True))
    trainer_args = dict(component(cfg.trainer, "trainer"))
    if isinstance(trainer_args.get("strategy"), DictConfig):  # a strategy object, e.g. FSDP's
        trainer_args["strategy"] = instantiate(trainer_args["strategy"])
    epochs = cfg.epochs_per_iteration

    def describe(trainer) -> str:
        return (
            f"[iteration {loop.iteration}/{iterations}] training: epoch {trainer.current_epoch % epochs + 1}/{epochs}"
        )

    progress = progress_callbacks(cfg.progress, describe)
    trainer = pl.Trainer(
        max_epochs=iterations * cfg.epochs_per_iteration,
        reload_dataloaders_every_n_epochs=1,  # new lists each iteration, a seeded shuffle each epoch
        callbacks=[loop, *progress, *callbacks],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=bool(progress) and interactive(),
        enable_model_summary=False,
        default_root_dir=str(run_dir),
        num_sanity_val_steps=0,
        **trainer_args,
    )
    return Run(cfg, trainer, module, datamodule, loop, generator, source.report)


def fit(r: Run) -> dict:
    """Fit a built run (with `resume` set: from `<run_dir>/checkpoints/last.ckpt` where it exists);
    write `<run_dir>/summary.json` and return the summary."""
    run_dir = Path(r.cfg.run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = bool(r.cfg.resume) and ckpt.exists()
    if rank_zero_only.rank == 0:  # other data-parallel ranks run this too
        OmegaConf.save(r.cfg, run_dir / "config.yaml", resolve=True)  # what `resume=` reads back
    r.loop.resuming = resume
    if resume:
        log.info("resuming from %s", ckpt)
    elif r.cfg.resume:
        log.warning(
            "resume=%s: no checkpoint there yet (the run stopped before its first epoch ended): starting it over",
            run_dir,
        )
    r.trainer.fit(r.module, datamodule=r.datamodule, ckpt_path=ckpt if resume else None, weights_only=True)
    timing = r.loop.wall_times()
    gen = r.generator
    throughput = {  # generation counts every generate call (sampling and evaluation)
        "generation_tokens_per_s": gen.tokens / max(gen.seconds, 1e-9),
        "training_tokens_per_s": int(r.module.tokens) / max(timing.get("training", 0.0), 1e-9),
    }
    last = r.loop.metrics[-1] if r.loop.metrics else {}  # no metrics without a gold judge
    summary = {
        "config": OmegaConf.to_container(r.cfg, resolve=True),
        "history": r.loop.metrics,
        "final": {k: v for k, v in last.items() if k not in ("iteration", "dropped")},
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "throughput": {k: round(v, 1) for k, v in throughput.items()},
        "reference_forwards": r.loop.reference.forwards,
        "data": r.data_report,
    }
    policy = r.module.full_policy() if r.cfg.save_policy else None  # FSDP: every rank gathers
    if not r.trainer.is_global_zero:  # under data parallelism rank zero reports for all
        return summary
    if policy is not None:  # from_pretrained-ready, e.g. for larpo-generate
        policy.save_pretrained(run_dir / "policy")
        r.loop.tokenizer.save_pretrained(run_dir / "policy")
    (run_dir / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    if r.trainer.logger is not None:
        r.trainer.logger.log_metrics(
            {f"timing/{k}": v for k, v in summary["timing"].items()}
            | {f"throughput/{k}": v for k, v in summary["throughput"].items()},
            step=r.trainer.global_step,
        )
        experiment = getattr(r.trainer.logger, "experiment", None)
        if hasattr(experiment, "summary") and hasattr(experiment, "finish"):  # W&B
            experiment.summary.update({f"final/{k}": v for k, v in summary["final"].items()})
            run_path = Path(experiment.dir).parent
            offline = bool(getattr(experiment.settings, "_offline", False)) or os.environ.get("WANDB_MODE") == "offline"
            experiment.finish()
            if offline:
                log.info("W&B offline run: %s (upload it with: wandb sync %s)", run_path, run_path)
            else:
                log.info("W&B run: %s", getattr(experiment, "url", run_path))
        else:
            r.trainer.logger.save()
    log.info("seconds per phase: %s", ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    log.info("tokens per second: %s", ", ".join(f"{k} {v:.0f}" for k, v in throughput.items()))
    log.info("run finished in %.0f s: %s", timing["total"], run_dir / "summary.json")
    return summary


def run(cfg: DictConfig) -> dict:
    """Build and fit the LarPO run of `cfg`; returns the summary (also in summary.json)."""
    return fit(build(cfg))
