"""Freed memory back to the operating system between phases.

glibc keeps the heap a process has freed for its own later use, and decoding frees a great deal
in pieces of changing size (a KV cache that grows by a token a step and shrinks as answers end):
the process's resident memory stays at its evaluation's peak and training's optimizer state comes
on top of it. `malloc_trim` returns the free pages; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def trim() -> None:
    """Return the process's free heap pages to the OS (glibc), where it can."""
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
