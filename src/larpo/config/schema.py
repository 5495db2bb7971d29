"""The root schema, assembled from the schema each package keeps beside its code, and its
registration in Hydra's ConfigStore (`larpo_schema`, `<group>_schema`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from larpo.data.schema import DataSchema
from larpo.evaluation.schema import Eval
from larpo.fields import Memory, Reference, Schedule, at_least, instantiable, num, positive
from larpo.generation.schema import GeneratorSchema
from larpo.loggers.schema import LoggerSchema
from larpo.models.schema import ModelSchema
from larpo.negatives.schema import NegativesSchema
from larpo.objectives.schema import ObjectiveSchema
from larpo.parallel.schema import TrainerSchema
from larpo.report.schema import Report
from larpo.rewards.schema import RewardModelSchema


@dataclass
class CandidateListSchema:
    """The `candidate_list` group: the loop's list of samples per prompt."""

    size: int | None = at_least(2, 8)  # null: as many as the objective keeps
    memory: Memory = Memory.current
    temperatures: list[float] | None = positive(example=1.0)
    schedule: list[float] | None = positive(example=1.0)
    drop_truncated: bool = False  # a sample cut at max_new_tokens (no EOS) never enters a list
    missing_eos_penalty: float | None = num(example=1.0, ge=0)  # subtracted from a cut sample's reward


@dataclass
class Optimizer:
    weight_decay: float = num(0.0, example=0.01, ge=0)  # AdamW's decoupled weight decay
    warmup_ratio: float = num(0.0, example=0.1, ge=0, lt=1)  # share of the run's steps warming up linearly
    schedule: Schedule = Schedule.constant  # after warm-up: constant, or linear / cosine decay to 0


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
    score_tokens: int = at_least(16, 4096)  # padded tokens per log-prob forward pass without gradients
    eval: Eval = field(default_factory=Eval)
    optimizer: Optimizer = field(default_factory=Optimizer)
    threads: int | None = at_least(1)  # null: torch's default (the cores); idle OpenMP threads sleep
    progress: bool = True
    save_policy: bool = True
    reuse: bool = True  # a sweep job equal to a finished run (run/jobs.py) reuses its results
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
    if f.default_factory is not dataclasses.MISSING and f.name not in ("eval", "report", "optimizer")
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
    """A group node as `hydra.utils.instantiate` gets it: without its schema's capability keys."""
    return instantiable(node, GROUP_SCHEMAS[group])
