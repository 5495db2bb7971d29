"""Strict JSON in and out (RFC 8259): larpo never writes NaN or Infinity, and reads one line at a time.

Out: a non-finite float becomes `null` (callers say why in a sibling key where it matters).
In: each line of a JSONL file is decoded on its own; a bad line is skipped with its line number and
the reason, never coerced and never fatal for the other lines.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by None (recursively)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """Strict JSON text: NaN and infinities become null; anything else non-JSON raises."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def write_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as strict JSON to `path` through a temporary file of this process, so a reader
    (or a parallel job writing the same entry) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(dumps(obj))
    os.replace(tmp, path)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """Strict JSON parsing: NaN, Infinity and -Infinity are errors, as in other languages' parsers."""
    return json.loads(text, parse_constant=_reject_constant)


def read_lines(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, JSON object, None) for each good line of a JSONL file, or
    (line number, None, reason) for a bad one. Blank lines are skipped silently."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield n, None, f"not UTF-8 ({err.reason} at byte {err.start})"
                continue
            if not line.strip():
                continue
            try:
                row = loads(line)
            except ValueError as err:
                yield n, None, f"not JSON ({err})"
                continue
            if not isinstance(row, dict):
                yield n, None, f"not a JSON object (a {type(row).__name__})"
                continue
            yield n, row, None
