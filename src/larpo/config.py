"""The typed schema of larpo's config, and the check that runs right after Hydra composes it.

Every key has a type and, where it is a number, a range. The dataclasses below are registered in
Hydra's ConfigStore (`larpo_schema`, `schema/<group>`) so a user's option file can extend them; the
check walks the composed config against them and stops at the first bad value with one line,
`larpo: key=value: why; fix`. Group nodes are open: a user's own component may bring keys of its
own, which its constructor checks when it is built.

Capabilities, not option names, drive the rules between components: an objective says whether it
`needs_reference` or `needs_lengths`, a reward model whether it `uses_reference` answers or
`needs_task` (the embedded world), a data source whether it `has_reference` answers or a `task`,
a component which packages it `requires`. These keys are larpo's, not the component's: they are
never passed to its `_target_`.

This module imports only the standard library, Hydra and OmegaConf, so `larpo --help`, `--cfg job`
and every config error cost what Hydra costs (no torch).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue


class ConfigError(ValueError):
    """A config value that cannot work. `str()` is the one line users see: key=value: why; fix."""

    def __init__(self, key: str, value: Any, why: str, fix: str):
        self.key, self.value, self.why, self.fix = key, value, why, fix
        super().__init__(f"{key}={_show(value)}: {why}; {fix}")


def _show(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=False)
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


# --- ranges -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Bounds of a number: gt/ge below, lt/le above; `example` is a valid value for the fix."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    example: Any = None

    def why(self, x: float) -> str | None:
        if self.gt is not None and not x > self.gt:
            return f"must be > {self.gt:g}"
        if self.ge is not None and not x >= self.ge:
            return f"must be >= {self.ge:g}"
        if self.lt is not None and not x < self.lt:
            return f"must be < {self.lt:g}"
        if self.le is not None and not x <= self.le:
            return f"must be <= {self.le:g}"
        return None


def num(default: Any = None, example: Any = None, **bounds) -> Any:
    """A numeric field with its range, e.g. `num(0.1, gt=0)`; `example` (else the default) is
    the valid value a message suggests."""
    example = example if example is not None else default
    return field(default=default, metadata={"range": Range(example=example, **bounds)})


def positive(default: Any = None, example: Any = None) -> Any:
    return num(default, example=example, gt=0)


def at_least(n: int, default: Any = None) -> Any:
    return num(default, example=max(n, default or n), ge=n)


def share(default: Any = None) -> Any:
    return num(default, example=0.5, ge=0, le=1)


class Reference(enum.Enum):
    behavior = "behavior"  # the policy at the start of each iteration (Algorithm 1)
    initial = "initial"  # the SFT policy, fixed
    none = "none"  # reference-free objectives only


class Memory(enum.Enum):
    current = "current"
    previous = "previous"
    all = "all"


class Gains(enum.Enum):
    shift = "shift"  # labels relative to the list's worst candidate
    clamp = "clamp"  # negative labels set to 0 (allRank)


class Figure(enum.Enum):
    bar = "bar"
    line = "line"


class LoggerMode(enum.Enum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


class DType(enum.Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    auto = "auto"


# --- the schema ---------------------------------------------------------------------------------


@dataclass
class Keep:
    positives: int = at_least(1, 1)
    negatives: int | None = at_least(1, 1)  # null: all the rest of the list


@dataclass
class ObjectiveSchema:
    """`_target_`: a loss function with the objective contract; the other keys below the
    capabilities are its keyword hyperparameters."""

    _target_: str = ""
    keep: Keep = field(default_factory=Keep)
    sft_weight: float = num(0.0, example=1.0, ge=0)
    needs_reference: bool = True
    needs_lengths: bool = False
    # hyperparameters of the shipped objectives (a user's objective may add its own)
    beta: float | None = positive(example=0.1)
    alpha: float | None = positive(example=1.0)
    gamma: float | None = num(example=1.0, ge=0)
    delta: float | None = positive(example=1.0)
    temperature: float | None = positive(example=1.0)
    reg_weight: float | None = num(example=0.1, ge=0)
    ft_weight: float | None = num(example=1.0, ge=0)
    nll_weight: float | None = num(example=1.0, ge=0)
    desirable_weight: float | None = num(example=1.0, ge=0)
    undesirable_weight: float | None = num(example=1.0, ge=0)
    normalize: bool | None = None
    dynamic_temperature: bool | None = None

    capabilities: typing.ClassVar = ("keep", "sft_weight", "needs_reference", "needs_lengths")


@dataclass
class NegativesSchema:
    _target_: str = ""
    temperature: float | None = positive(example=0.7)  # the strategy's own sampling temperature
    keep_from_samples: bool = False  # positives and negatives both come from the ranked samples
    capabilities: typing.ClassVar = ("keep_from_samples",)


@dataclass
class CandidateListSchema:
    size: int | None = at_least(2, 8)  # null: as many as the objective keeps
    memory: Memory = Memory.current
    temperatures: list[float] | None = positive(example=1.0)
    schedule: list[float] | None = positive(example=1.0)


@dataclass
class Arch:
    hidden_size: int = at_least(1, 128)
    num_layers: int = at_least(1, 4)
    num_heads: int = at_least(1, 4)
    intermediate_size: int = at_least(1, 384)
    max_positions: int = at_least(8, 32)


@dataclass
class SFT:
    steps: int = at_least(1, 1200)
    batch_size: int = at_least(1, 128)
    lr: float = positive(1e-3)
    warmup: int = at_least(0, 100)
    examples: int = at_least(1, 153600)


@dataclass
class ModelSchema:
    path: str | None = None
    cache_dir: str = "~/.cache/larpo"
    trust_remote_code: bool = False
    dtype: DType | None = None
    gradient_checkpointing: bool = False
    lora: dict[str, Any] | None = None
    arch: Arch | None = None
    sft: SFT | None = None


@dataclass
class RewardModelSchema:
    _target_: str = ""
    path: str | None = None
    batch_size: int | None = at_least(1, 64)
    dtype: DType | None = None
    trust_remote_code: bool | None = None
    pairs: int | None = at_least(2, 20000)
    truth_share: float | None = share()
    label_noise: float | None = num(example=0.1, ge=0, lt=0.5)  # 0.5 would be pure noise
    epochs: int | None = at_least(1, 3)
    lr: float | None = positive(example=3e-4)
    uses_reference: bool = False
    needs_task: bool = False
    requires: dict[str, str] | None = None  # module: pip package
    capabilities: typing.ClassVar = ("uses_reference", "needs_task", "requires")


@dataclass
class Task:
    _target_: str = ""
    ops: str = "+"
    max_digits: int = num(2, example=2, ge=1, le=6)
    noise: float = share(0.3)
    noise_scale: int = at_least(1, 10)


@dataclass
class DataSchema:
    _target_: str = ""
    path: str | None = None
    eval_path: str | None = None
    prompts_per_iteration: int = at_least(1, 2048)
    eval_prompts: int = at_least(0, 1000)
    eval_seed: int = at_least(0, 12345)
    task: Task | None = None
    evaluate: bool | None = None
    has_reference: bool = False
    requires: dict[str, str] | None = None
    capabilities: typing.ClassVar = ("has_reference", "requires")


@dataclass
class GeneratorSchema:
    _target_: str = ""
    batch_size: int | None = at_least(1, 1024)
    max_new_tokens: int = at_least(1, 8)
    tensor_parallel_size: int | None = at_least(1, 1)
    gpu_memory_utilization: float | None = num(example=0.4, gt=0, le=1)
    requires: dict[str, str] | None = None
    capabilities: typing.ClassVar = ("requires",)


@dataclass
class LoggerSchema:
    _target_: str = ""
    mode: LoggerMode | None = None
    project: str | None = None


@dataclass
class TrainerSchema:
    accelerator: str = "cpu"
    devices: Any = 1
    precision: str = "32-true"
    log_every_n_steps: int = at_least(1, 10)
    gradient_clip_val: float | None = num(example=1.0, ge=0)
    requires: dict[str, str] | None = None
    shards_parameters: bool = False  # FSDP: the policy's weights live in shards across ranks
    capabilities: typing.ClassVar = ("requires", "shards_parameters")


@dataclass
class Eval:
    prompts: int | None = at_least(1, 100)  # null: every held-out prompt (of the test split)
    validation: float = num(0.0, example=0.3, ge=0, lt=1)  # share of held-out prompts set aside (val_* metrics)
    samples: int = at_least(1, 8)
    temperature: float = positive(1.0)
    every_iteration: bool = True


@dataclass
class Report:
    figure: Figure = Figure.bar
    x: str | None = None
    order: list[Any] | None = None
    baseline: str | None = None
    claims: list[str] | None = None
    metric: str | None = None
    tune: str | None = None  # an override chosen per setting on a validation metric, e.g. lr
    tune_by: str = "val_win_rate_vs_sft"


@dataclass
class TrainSchema:
    """The primary config (`conf/train.yaml`); group nodes are checked by their own schemas."""

    seed: int = at_least(0, 0)
    iterations: int = at_least(1, 3)
    temperature: float = positive(1.0)
    beta: float = positive(0.1)
    sft_weight: float = num(1.0, example=1.0, ge=0)
    lr: float = positive(3e-5)
    batch_size: int = at_least(1, 32)
    epochs_per_iteration: int = at_least(1, 2)
    offline: bool = False
    reference: Reference = Reference.behavior
    eval: Eval = field(default_factory=Eval)
    progress: bool = True
    save_policy: bool = True
    resume: str | None = None
    run_dir: str = ""
    experiment_name: str | None = None
    report: Report = field(default_factory=Report)
    objective: ObjectiveSchema = field(default_factory=ObjectiveSchema)
    negatives: NegativesSchema = field(default_factory=NegativesSchema)
    candidate_list: CandidateListSchema = field(default_factory=CandidateListSchema)
    model: ModelSchema = field(default_factory=ModelSchema)
    reward_model: RewardModelSchema = field(default_factory=RewardModelSchema)
    data: DataSchema = field(default_factory=DataSchema)
    generator: GeneratorSchema = field(default_factory=GeneratorSchema)
    logger: LoggerSchema = field(default_factory=LoggerSchema)
    trainer: TrainerSchema = field(default_factory=TrainerSchema)


GROUP_SCHEMAS = {
    f.name: f.default_factory
    for f in dataclasses.fields(TrainSchema)
    if f.default_factory is not dataclasses.MISSING and f.name not in ("eval", "report")
}


def register() -> None:
    """Put the schema in Hydra's ConfigStore: `larpo_schema` and `<group>_schema` (a user's option
    file may start from one: `defaults: [/objective_schema, _self_]`). Done on the first check, not
    on import: Hydra copies the whole store on every group lookup, and `--help` makes ~100."""
    cs = ConfigStore.instance()
    if cs.repo.get("larpo_schema.yaml"):
        return
    cs.store(name="larpo_schema", node=TrainSchema)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(name=f"{group}_schema", node=schema)


def component(node: DictConfig, group: str) -> DictConfig:
    """A group node without larpo's capability keys (its schema's `capabilities`): what
    `hydra.utils.instantiate` gets."""
    drop = set(getattr(GROUP_SCHEMAS[group], "capabilities", ()))
    return OmegaConf.create({k: v for k, v in node.items() if k not in drop}, flags={"allow_objects": True})


# --- the check ----------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(e.value for e in tp)
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _unoptional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _check_scalar(key: str, value: Any, tp: Any, rng: Range | None) -> None:
    example = rng.example if rng and rng.example is not None else None
    fix = f"e.g. {key}={_show(example)}" if example is not None else f"give {_type_name(tp)}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if value not in {e.value for e in tp}:
            raise ConfigError(key, value, f"must be {_type_name(tp)}", f"e.g. {key}={next(iter(tp)).value}")
        return
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp, True)
    if not ok:
        raise ConfigError(key, value, f"must be {_type_name(tp)}", fix)
    if tp is float and not math.isfinite(value):
        raise ConfigError(key, value, "must be a finite number", fix)
    if rng is not None and tp in (int, float):
        why = rng.why(value)
        if why:
            raise ConfigError(key, value, why, fix)


def check_node(node: Any, schema: type, prefix: str = "") -> None:
    """Check every key of `node` that `schema` knows: type, range, nested schemas."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if not isinstance(node, DictConfig) or f.name not in node:
            continue
        key = f"{prefix}{f.name}"
        try:
            value = node[f.name]
        except MissingMandatoryValue:
            raise ConfigError(key, "???", "is required", f"add {key}=...") from None
        except InterpolationResolutionError as err:
            raise ConfigError(
                key, node._get_node(f.name)._value(), f"does not resolve ({err.msg})", "fix the interpolation"
            ) from None
        tp, optional = _unoptional(hints[f.name])
        if value is None:
            if not optional:
                raise ConfigError(key, None, f"must be {_type_name(tp)}", f"give {key} a value")
            continue
        rng = f.metadata.get("range")
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, DictConfig):
                raise ConfigError(key, value, "must be a group of keys", f"see `larpo --cfg job` for {key}")
            check_node(value, tp, key + ".")
        elif typing.get_origin(tp) is list:
            if not isinstance(value, ListConfig):
                raise ConfigError(key, value, "must be a list", f"e.g. {key}=[1.0,0.5]")
            (item,) = typing.get_args(tp)
            for i, v in enumerate(value):
                _check_scalar(f"{key}[{i}]", v, item, rng)
        elif typing.get_origin(tp) is dict or tp is Any:
            continue
        else:
            _check_scalar(key, value, tp, rng)


def validation_size(share: float, held_out: int) -> int:
    """Prompts in the validation split: `eval.validation` of the held-out ones, at least one."""
    return max(1, round(share * held_out)) if share else 0


def list_size(cfg: DictConfig) -> int:
    """Samples per prompt per iteration: candidate_list.size, the length of its per-sample
    temperatures, or (size=null) exactly as many as the objective keeps (the paper's Table 3)."""
    cl, keep = cfg.candidate_list, cfg.objective.keep
    if cl.temperatures:
        return len(cl.temperatures)
    return cl.size if cl.size is not None else keep.positives + (keep.negatives or 1)


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
    check_node(cfg, TrainSchema)
    obj, cl, data = cfg.objective, cfg.candidate_list, cfg.data
    k = list_size(cfg)
    need = obj.keep.positives + (obj.keep.negatives or 1)
    if cfg.negatives.get("keep_from_samples") and k < need:
        raise ConfigError(
            "candidate_list.size",
            k,
            f"too small to keep {obj.keep.positives} positives + {obj.keep.negatives} negatives",
            f"use candidate_list.size>={need}",
        )
    if cl.memory == "previous" and cfg.iterations == 1:
        warnings.warn("candidate_list.memory=previous with iterations=1 is the same as current", stacklevel=2)
    n_test = data.eval_prompts - validation_size(cfg.eval.validation, data.eval_prompts)
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
    model = cfg.model
    if not model.get("path") and not model.get("sft"):
        raise ConfigError(
            "model.path",
            None,
            "this model has no SFT stage to build it",
            "give model.path=<hub id or directory>",
        )
    if not model.get("path") and not data.get("task"):
        raise ConfigError(
            "model.path",
            None,
            "the tiny model is trained for the arithmetic world only",
            "give a pretrained policy: model=hf model.path=<hub id or directory>",
        )
    if model.get("arch") and model.arch.hidden_size % model.arch.num_heads:
        raise ConfigError(
            "model.arch.num_heads",
            model.arch.num_heads,
            f"must divide hidden_size={model.arch.hidden_size}",
            "e.g. model.arch.num_heads=4",
        )
    rm = cfg.reward_model
    if rm.get("needs_task") and not data.get("task"):
        raise ConfigError(
            "reward_model",
            _choice(cfg, "reward_model", choices),
            "is trained on the arithmetic world",
            "use data=arithmetic",
        )
    if rm.get("uses_reference") and not data.get("has_reference"):
        raise ConfigError(
            "reward_model",
            _choice(cfg, "reward_model", choices),
            f"checks answers against references, which data={_choice(cfg, 'data', choices)} has not",
            "use data=gsm8k or data=arithmetic",
        )
    if cfg.reference == "none" and obj.needs_reference:
        raise ConfigError(
            "reference",
            "none",
            f"objective={_choice(cfg, 'objective', choices)} needs a reference model",
            "use reference=behavior, or a reference-free objective",
        )
    _check_paths(cfg)
    _check_requires(cfg, choices)


# --- composition outside the CLI (notebooks, tests, `objectives.build`) -------------------------

CONFIG_MODULE = "larpo.conf"


def _unique_id() -> str:
    """A short random id: two runs started in the same second never share a directory."""
    import secrets

    return secrets.token_hex(3)


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("larpo.or", lambda a, b: a if a not in (None, "") else b, replace=True)
    # cached: every use in one process gets the same id (the run dir is read more than once)
    OmegaConf.register_new_resolver("larpo.uid", _unique_id, replace=True, use_cache=True)


register_resolvers()


def compose(
    overrides: list[str] = (), config_name: str = "train", config_dir: str | None = None, return_hydra_config=False
) -> DictConfig:
    """The config the CLI would compose from `overrides` (with a user's `--config-dir`), without
    running anything. Inside a running Hydra app, its already initialised search path is used."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    if config_dir is not None:
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides, return_hydra_config=return_hydra_config)
