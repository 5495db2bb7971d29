"""The walker: checks every key of a composed config node against its schema dataclass (type,
range, nested schemas) and stops at the first bad value with a `ConfigError`."""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from larpo.fields import ConfigError, Range, _show


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


def check_keys(node: Any, schema: type, prefix: str = "") -> None:
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
            check_keys(value, tp, key + ".")
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
