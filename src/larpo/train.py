"""`larpo`: the Hydra entry point. Compose the config, validate it, build the pieces, fit, summarise."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from transformers import AutoTokenizer

from larpo import objectives
from larpo.data import ListDataModule
from larpo.evaluation import Evaluator
from larpo.generation import HFGenerator
from larpo.loop import LarpoLoop
from larpo.models import load_policy, prepare_for_training
from larpo.module import LarpoModule
from larpo.negatives import STRATEGIES
from larpo.rewards import build_reward_model
from larpo.sft import sft_policy_path
from larpo.sources import load_source

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
    check_data(cfg.data)
    check_packages(cfg)
    if not cfg.model.get("path") and cfg.model.name != "tiny":
        raise ConfigError(f"model={cfg.model.name} needs model.path=<hub id or directory of the policy>")
    if not cfg.model.get("path") and cfg.data.name not in ("arithmetic", "lists"):
        raise ConfigError(
            f"data={cfg.data.name} needs a pretrained policy: use e.g. model=hf model.path=<hub id or "
            "directory> (the tiny model is trained for the arithmetic world only)"
        )
    if cfg.reward_model.name == "learned" and cfg.data.name != "arithmetic":
        raise ConfigError("reward_model=learned is the arithmetic world's reward model: use data=arithmetic")
    if cfg.reward_model.name == "verifier" and cfg.data.name not in ("gsm8k", "arithmetic"):
        raise ConfigError(
            f"reward_model=verifier checks answers against references, which data={cfg.data.name} "
            "has not: use data=gsm8k"
        )
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


def _looks_local(path: str) -> bool:
    return path.startswith(("/", ".", "~")) or path.endswith((".json", ".jsonl")) or Path(path).exists()


def check_data(data: DictConfig) -> None:
    """A data file must exist; a hub id needs the datasets package."""
    for key in ("path", "eval_path"):
        path = data.get(key)
        if not path:
            continue
        if data.name == "lists" or _looks_local(str(path)):
            if not Path(str(path)).expanduser().is_file():
                raise ConfigError(f"data.{key}={path} does not exist: give the path of an existing file")
        elif importlib.util.find_spec("datasets") is None:
            raise ConfigError(
                f"data.{key}={path} is a hub id, and loading it needs the datasets package: "
                'pip install datasets (or pip install -e ".[hub]"), or give a local JSONL file'
            )


def check_packages(cfg: DictConfig) -> None:
    """Optional packages are imported only when selected; say which one to install, before any work."""
    needs = {
        "vllm": cfg.generator.name == "vllm",
        "llm_blender": cfg.reward_model.name == "pairrm",
        "deepspeed": "deepspeed" in str(cfg.trainer.get("strategy", "")),
        "peft": bool(cfg.model.get("lora")),
    }
    pip = {"vllm": "vllm", "llm_blender": "llm-blender", "deepspeed": "deepspeed", "peft": "peft"}
    what = {
        "vllm": "generator=vllm",
        "llm_blender": "reward_model=pairrm",
        "deepspeed": "trainer=deepspeed",
        "peft": "model.lora",
    }
    for module, needed in needs.items():
        if needed and importlib.util.find_spec(module) is None:
            raise ConfigError(f"{what[module]} needs the {pip[module]} package: pip install {pip[module]}")


def accelerator_device(cfg: DictConfig) -> str | None:
    """This process's GPU when the trainer runs on GPUs (under DDP each rank has its LOCAL_RANK)."""
    if cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return None


def build_generator(cfg: DictConfig, policy_path: str):
    """The sampler named by `cfg.generator.name`: batched HF generate, or vLLM."""
    gen = cfg.generator
    if gen.name == "vllm":
        from larpo.generation import VLLMGenerator

        return VLLMGenerator(
            policy_path,
            work_dir=Path(cfg.run_dir) / "vllm_policy",
            tensor_parallel_size=gen.tensor_parallel_size,
            gpu_memory_utilization=gen.gpu_memory_utilization,
            max_new_tokens=gen.max_new_tokens,
            dtype=cfg.model.get("dtype") or "auto",
            trust_remote_code=cfg.model.trust_remote_code,
            progress=cfg.progress,
        )
    return HFGenerator(batch_size=gen.batch_size, max_new_tokens=gen.max_new_tokens, progress=cfg.progress)


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

    iterations, n_prompts = schedule(cfg)
    t = time.perf_counter()
    policy_path = str(sft_policy_path(cfg, progress=cfg.progress))
    timing["sft"] = time.perf_counter() - t
    policy, tokenizer = load_policy(
        policy_path, trust_remote_code=cfg.model.trust_remote_code, dtype=cfg.model.get("dtype")
    )
    lora = OmegaConf.to_container(cfg.model.lora, resolve=True) if cfg.model.get("lora") else None
    policy = prepare_for_training(policy, cfg.model.get("gradient_checkpointing", False), lora)
    source = load_source(cfg, n_prompts)
    if source.report:
        log.info("data: %s", source.report)
    reward_model = None
    if source.given is None:
        reward_model = build_reward_model(cfg, policy_path, source.reference, device=accelerator_device(cfg))

    obj = cfg.objective
    objective = objectives.build(obj.name, sft_weight=obj.sft_weight, **obj.hparams)
    generator = build_generator(cfg, policy_path)
    datamodule = ListDataModule(cfg.batch_size, tokenizer.pad_token_id, cfg.seed)
    evaluator = None
    if source.eval and source.judge is not None:
        evaluator = Evaluator(
            source.eval,
            source.judge,
            source.reference or (lambda p: None),
            generator,
            k=cfg.eval.samples,
            temperature=cfg.eval.temperature,
            seed=cfg.seed + 202,
        )
    else:
        log.info("evaluation: no held-out prompts with a gold judge; export answers with larpo-generate")
    cl, negs = cfg.candidate_list, cfg.negatives
    loop = LarpoLoop(
        prompts=source.train,
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
        reference_answer=source.reference,
        unrelated_response=source.unrelated,
        given=source.given,
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
    return Run(cfg, trainer, module, datamodule, loop, logger, timing, source.report)


def fit(r: Run) -> dict:
    """Fit a built run (with `resume` set: from `<run_dir>/checkpoints/last.ckpt` where it exists);
    write `<run_dir>/summary.json` and return the summary."""
    start = time.perf_counter()
    run_dir = Path(r.cfg.run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = bool(r.cfg.get("resume")) and ckpt.exists()
    if rank_zero_only.rank == 0:  # other data-parallel ranks run this too
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
    last = r.loop.metrics[-1] if r.loop.metrics else {}  # no metrics without a gold judge
    summary = {
        "config": OmegaConf.to_container(r.cfg, resolve=True),
        "history": r.loop.metrics,
        "final": {k: v for k, v in last.items() if k not in ("iteration", "dropped")},
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "throughput": {k: round(v, 1) for k, v in throughput.items()},
        "reference_forwards": r.loop.reference_forwards,
        "data": r.data_report,
    }
    if not r.trainer.is_global_zero:  # under data parallelism rank zero reports for all
        return summary
    if r.cfg.get("save_policy", True):  # from_pretrained-ready, e.g. for larpo-generate
        r.module.policy.save_pretrained(run_dir / "policy")
        r.loop.tokenizer.save_pretrained(run_dir / "policy")
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
    return summary["final"].get("win_rate_vs_sft", float("nan"))


if __name__ == "__main__":
    main()
