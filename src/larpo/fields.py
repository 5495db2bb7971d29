"""The building blocks of larpo's typed schema: the one-line `ConfigError`, numeric fields with
ranges, and the enums of keys with a fixed set of values. Standard library and OmegaConf only, so
every package's schema module can import this without torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


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


class Schedule(enum.Enum):
    constant = "constant"  # the learning rate after warm-up, unchanged
    linear = "linear"  # linear decay to 0 at the run's last step
    cosine = "cosine"  # cosine decay to 0 at the run's last step


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


def instantiable(node: DictConfig, schema: type) -> DictConfig:
    """A group node without larpo's capability keys (its schema's `capabilities`): what
    `hydra.utils.instantiate` gets."""
    drop = set(getattr(schema, "capabilities", ()))
    return OmegaConf.create({k: v for k, v in node.items() if k not in drop}, flags={"allow_objects": True})
