"""The `logger` group's schema."""

from __future__ import annotations

from dataclasses import dataclass

from larpo.fields import LoggerMode


@dataclass
class LoggerSchema:
    _target_: str = ""
    mode: LoggerMode | None = None
    project: str | None = None
