"""The composition root of a run: one short builder per component, each given its own config node.

`larpo` (src/larpo/cli.py) composes and checks the config, then calls `larpo.run.fit.run`. Every
component is built from its own node with `hydra.utils.instantiate`; `_partial_` targets get the
runtime objects they need here. An embedded world is reached only through the data option: its
source carries its judge, its task and its SFT stage.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from transformers import AutoTokenizer

from larpo.candidates import PoolStore
from larpo.clock import PhaseClock
from larpo.config.rules import check
from larpo.config.schema import component
from larpo.console import interactive, progress_callbacks
from larpo.data.contract import Source
from larpo.evaluation import cache as eval_cache
from larpo.evaluation.evaluator import Evaluator, SplitEvaluator
from larpo.evaluation.exact import ExactEvaluator
from larpo.evaluation.judged import JudgeEvaluator, WithJudge
from larpo.fields import ConfigError
from larpo.generation.contract import Generator
from larpo.models import gguf
from larpo.models.policy import load_policy, prepare_for_training
from larpo.negatives.contract import Strategy
from larpo.objectives.binding import from_config
from larpo.rewards.contract import RewardContext, RewardModel
from larpo.run import lock
from larpo.run.datamodule import ListDataModule
from larpo.run.iteration import Evaluation, Iteration
from larpo.run.loop import LarpoLoop, Plan
from larpo.run.module import LarpoModule, LRSchedule
from larpo.run.ranking import Ranker, Truncation
from larpo.run.reference import ReferenceLogps
from larpo.run.sampling import CandidateSampler, GivenLists, SamplingSpec
from larpo.shape import Shape, validation_size

log = logging.getLogger("larpo")


@dataclass
class BuiltRun:
    """Everything one LarPO run is made of, built from a config but not yet fitted."""

    cfg: DictConfig
    trainer: pl.Trainer
    module: LarpoModule
    datamodule: ListDataModule
    loop: LarpoLoop
    generator: Generator
    data_report: dict = field(default_factory=dict)


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


def lr_schedule(cfg: DictConfig, shape: Shape | None = None) -> LRSchedule:
    """The run's optimizer steps (estimated by its shape) and the warm-up's share of them."""
    shape = shape or Shape.of(cfg)
    return LRSchedule(warmup=shape.warmup, total=shape.steps, kind=str(cfg.optimizer.schedule))


def build_source(cfg: DictConfig, prompts_per_iteration: int) -> Source:
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=prompts_per_iteration, seed=cfg.seed)
    if source.report:
        log.info("data: %s", source.report)
    return source


def initial_policy(cfg: DictConfig, source: Source) -> str:
    """`model.path`, or the data option's world's SFT policy (trained first if not cached)."""
    if cfg.model.path:
        return str(cfg.model.path)
    if cfg.model.get("gguf"):  # a GGUF file inside an installed package, converted once
        return gguf.converted(cfg.model.gguf.package, cfg.model.gguf.file, cfg.model.cache_dir)
    if source.sft is None:
        raise ConfigError(
            "model.path", None, "this data option has no SFT stage to build the tiny policy", "give model.path=..."
        )
    return str(source.sft(cfg.model, cfg.seed, progress=cfg.progress))


def build_policy(model_cfg: DictConfig, path: str):
    policy, tokenizer = load_policy(path, trust_remote_code=model_cfg.trust_remote_code, dtype=model_cfg.dtype)
    lora = OmegaConf.to_container(model_cfg.lora, resolve=True) if model_cfg.lora else None
    return prepare_for_training(policy, model_cfg.gradient_checkpointing, lora), tokenizer


def build_reward_model(cfg: DictConfig, source: Source, policy_path: str) -> RewardModel:
    context = RewardContext(
        source, policy_path, cfg.model.cache_dir, cfg.seed, accelerator_device(cfg.trainer), cfg.progress
    )
    return instantiate(component(cfg.reward_model, "reward_model"))(context=context)


def build_sampler(cfg: DictConfig, shape: Shape, source: Source, generator: Generator, tokenizer, strategy: Strategy):
    if source.given is not None:
        return GivenLists(source.given)
    cl = cfg.candidate_list
    spec = SamplingSpec(shape.k, cfg.temperature, cl.temperatures, cl.schedule, shape.negatives, cfg.seed)
    return CandidateSampler(generator, tokenizer, source, strategy, spec)


def build_ranker(
    objective: DictConfig, lists: DictConfig, shape: Shape, reward_model: RewardModel | None, strategy: Strategy
) -> Ranker:
    """`objective`, `lists`: the objective's and candidate_list's nodes."""
    erase = bool(objective.get("erase_below_top", False))
    truncated = Truncation(lists.drop_truncated, lists.missing_eos_penalty or 0.0)
    dedupe = bool(objective.get("dedupe", True))
    return Ranker(reward_model, strategy, lists.memory, shape.positives, shape.negatives, erase, truncated, dedupe)


def build_judge(cfg: DictConfig, source: Source, policy_path: str, reward_model: RewardModel | None):
    """The reward model that judges held-out samples: `eval.judge` (the training reward model
    itself when it is the same option), else the training reward model where the data has no gold
    judge, else none."""
    node = OmegaConf.select(cfg, "eval.judge")
    if node is None:
        return reward_model if source.judge is None else None
    if reward_model is not None and OmegaConf.to_container(node) == OmegaConf.to_container(cfg.reward_model):
        return reward_model
    context = RewardContext(
        source, policy_path, cfg.model.cache_dir, cfg.seed, accelerator_device(cfg.trainer), cfg.progress
    )
    return instantiate(component(node, "reward_model"))(context=context)


def build_evaluator(cfg: DictConfig, source: Source, generator: Generator, judge: RewardModel | None = None):
    """Held-out evaluation: the gold judge's metrics where the data has one, a reward model's
    (`judge`, judge_* metrics) where it is given; `eval.validation` splits off a validation share."""
    if not source.eval or (source.judge is None and judge is None):
        log.info("evaluation: no held-out prompts with a judge; export answers with larpo-generate")
        return None
    if source.judge is None:
        log.info("evaluation: no gold judge; the reward model %s judges held-out samples", type(judge).__name__)
    if source.validation is not None:  # the data holds out its own validation prompts
        validation, test = (source.validation if cfg.eval.validation else []), source.eval
    else:  # a share of the held-out prompts, the first ones
        n_val = validation_size(cfg.eval.validation, len(source.eval))
        validation, test = source.eval[:n_val], source.eval[n_val:]
    test = test[: cfg.eval.prompts] if cfg.eval.prompts else test
    reference = source.reference or (lambda p: None)

    def evaluator_of(prompts: list[str], seed: int):
        k, temperature = cfg.eval.samples, cfg.eval.temperature
        judged = JudgeEvaluator(prompts, judge, generator, k, temperature, seed) if judge is not None else None
        if source.judge is None:
            return judged
        exact = None
        if cfg.eval.exact and source.answers is not None:
            exact = ExactEvaluator(prompts, source.judge, reference, source.answers, temperature)
        gold = Evaluator(
            prompts,
            source.judge,
            reference,
            generator,
            k,
            temperature,
            seed,
            exact=exact,
            tokens=cfg.score_tokens,
            ranking=cfg.eval.ranking,
        )
        return WithJudge(gold, judged) if judged is not None else gold

    seed = cfg.seed if cfg.eval.get("seed") is None else cfg.eval.seed  # eval.seed: its own, apart from training
    evaluator = evaluator_of(test, seed + 202)
    return SplitEvaluator(evaluator, evaluator_of(validation, seed + 303)) if validation else evaluator


def build_logger(cfg: DictConfig):
    logger = instantiate(component(cfg.logger, "logger"))
    if callable(logger) and not isinstance(logger, pl.loggers.Logger):  # `_partial_`: it wants the run config
        logger = logger(config=OmegaConf.to_container(cfg, resolve=True))
    return logger


def build_trainer(cfg: DictConfig, shape: Shape, loop: LarpoLoop, callbacks: tuple) -> pl.Trainer:
    trainer_args = dict(component(cfg.trainer, "trainer"))
    if isinstance(trainer_args.get("strategy"), DictConfig):  # a strategy object, e.g. FSDP's
        trainer_args["strategy"] = instantiate(trainer_args["strategy"])
    epochs = shape.epochs

    def describe(trainer) -> str:
        return f"{loop.label(loop.iteration)} training: epoch {trainer.current_epoch % epochs + 1}/{epochs}"

    progress = progress_callbacks(cfg.progress, describe)
    return pl.Trainer(
        max_epochs=shape.iterations * epochs,
        reload_dataloaders_every_n_epochs=1,  # new lists each iteration, a seeded shuffle each epoch
        callbacks=[loop, *progress, *callbacks],
        logger=build_logger(cfg),
        enable_checkpointing=False,
        enable_progress_bar=bool(progress) and interactive(),
        enable_model_summary=False,
        default_root_dir=str(cfg.run_dir),
        num_sanity_val_steps=0,
        **trainer_args,
    )


def build(cfg: DictConfig, callbacks: tuple = (), checked: bool = False) -> BuiltRun:
    """Check `cfg` (unless the caller has: once per process), then build the policy, reward model,
    loop callback and Lightning trainer."""
    clock = PhaseClock()  # startup: imports, compose, checks, since the process (or the job before) began
    if not checked:
        check(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    check_reward_tokenizer(cfg.reward_model)
    objective = from_config(cfg.objective)  # unknown hyperparameters fail before SFT
    run_dir = Path(cfg.run_dir)
    if rank_zero_only.rank == 0:  # one process owns a run directory (data-parallel ranks share it)
        lock.acquire(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, verbose=False)
    shape = Shape.of(cfg)
    source = build_source(cfg, shape.prompts)
    with clock.phase("sft"):
        policy_path = initial_policy(cfg, source)
    policy, tokenizer = build_policy(cfg.model, policy_path)
    strategy = instantiate(component(cfg.negatives, "negatives"))
    generator = instantiate(component(cfg.generator, "generator"))
    sampler = build_sampler(cfg, shape, source, generator, tokenizer, strategy)
    reward_model = None
    if not sampler.scored:
        with clock.phase("reward_model"):
            reward_model = build_reward_model(cfg, source, policy_path)
    datamodule = ListDataModule(cfg.batch_size, tokenizer.pad_token_id, cfg.seed, cfg.model.get("share_prompt", False))
    judge = build_judge(cfg, source, policy_path, reward_model)
    evaluator = build_evaluator(cfg, source, generator, judge)
    reference = ReferenceLogps(
        tokenizer,
        cfg.reference if cfg.objective.needs_reference else "none",  # RAFT, GRPO at beta 0: no pass
        policy_path,
        cfg.score_tokens,
        cfg.trainer.get("precision", "32-true"),
        cfg.model.get("share_prompt", False),
    )
    ranker = build_ranker(cfg.objective, cfg.candidate_list, shape, reward_model, strategy)
    step = Iteration(sampler, ranker, reference, PoolStore(run_dir), clock, judge=source.judge)
    plan = Plan(shape.iterations, shape.epochs, cfg.eval.every_iteration, run_dir / "checkpoints")
    loop = LarpoLoop(step, build_evaluation(cfg, evaluator, tokenizer, policy_path, judge), datamodule, plan)
    module = LarpoModule(policy, objective, cfg.lr, cfg.beta, cfg.optimizer.weight_decay, lr_schedule(cfg, shape))
    trainer = build_trainer(cfg, shape, loop, callbacks)
    return BuiltRun(cfg, trainer, module, datamodule, loop, generator, source.report)


def build_evaluation(cfg: DictConfig, evaluator, tokenizer, policy_path: str, judge) -> Evaluation | None:
    """The evaluation phase around `evaluator`, with the SFT evaluation's cache entry (its key
    holds the policy, the held-out prompts, the hardware and the judge)."""
    if evaluator is None:
        return None
    hardware = {"device": accelerator_device(cfg.trainer) or "cpu", "threads": torch.get_num_threads()}
    judged_by = OmegaConf.select(cfg, "eval.judge") or (cfg.reward_model if judge is not None else None)
    cached = eval_cache.cache_path(cfg, policy_path, evaluator.prompts, hardware, judged_by)
    return Evaluation(evaluator, tokenizer, cached, tuple(cfg.eval.sharpen or ()))
