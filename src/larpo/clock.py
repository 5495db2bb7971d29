"""One clock for a run's phases: the wall seconds each phase took and how much it raised the
process's peak memory, across a resume.

`startup` is everything before the first phase (imports, compose, checks, building): it counts
from the process's start, or, for a sweep's second job in the same process, from the end of the
job before (`PhaseClock.job_done`). What the named phases do not cover is `other`, so every second
of `total` lands in a named phase. Standard library only: the command line imports it before torch.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

from larpo import memory

log = logging.getLogger("larpo")

_imported = time.time()  # where the process's start cannot be read
_next_job: float | None = None  # epoch seconds a sweep job that runs after another one starts at


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux counts kB, macOS bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def process_start() -> float:
    """When this process started (epoch seconds): from /proc on Linux (to 10 ms: the process's
    age in clock ticks against the system's uptime), else when larpo was first imported."""
    try:
        import os

        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return _imported


class PhaseClock:
    """Seconds and peak-memory rise per phase. `phase(name)` times a block; `state()` and
    `restore(state)` carry the phases before a resume into the resumed run's totals."""

    def __init__(self, started: float | None = None):
        """`started`: perf_counter time the run began; none: the job's start (see the module)."""
        if started is None:
            job = _next_job if _next_job is not None else process_start()
            startup = max(0.0, time.time() - job)
            started = time.perf_counter() - startup
            self.timing: dict[str, float] = defaultdict(float, {"startup": startup})
        else:
            self.timing = defaultdict(float)
        self.started = started
        self.rss_rise: dict[str, float] = defaultdict(float)  # MB each phase raised the process's peak by
        self.wall_before = 0.0  # wall seconds of the run before it was resumed

    @contextmanager
    def phase(self, name: str, label: str | None = None):
        """Time the block as `name` (logging `label` first, when given); what it freed goes back
        to the OS after it, before the next phase."""
        if label:
            log.info("%s %s", label, name)
        start, rss = time.perf_counter(), peak_rss_mb()
        try:
            yield
        finally:
            self.timing[name] += time.perf_counter() - start
            self.rss_rise[name] += peak_rss_mb() - rss
            memory.trim()

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def wall_times(self) -> dict[str, float]:
        """Seconds per phase, `total` wall time (across a resume) and `other`: the rest."""
        timing = dict(self.timing)
        total = self.wall()
        timing["other"] = max(0.0, total - sum(timing.values()))
        timing["total"] = total
        return timing

    def memory(self) -> dict:
        """The process's peak resident memory and how much each phase raised it: the phase that
        set the peak is the one to shrink (the rest, before the loop: `startup`)."""
        peak = peak_rss_mb()
        rise = {k: round(v, 1) for k, v in self.rss_rise.items() if v > 0}
        rise["startup"] = round(max(0.0, peak - sum(self.rss_rise.values())), 1)
        return {"peak_rss_mb": round(peak, 1), "rise_mb": rise}

    def state(self) -> dict:
        return {"timing": dict(self.timing), "wall": self.wall()}

    def restore(self, timing: dict, wall: float | None) -> None:
        """The phases of the run before a resume; this session's own setup (startup, SFT and
        reward model, cached now) is added to theirs."""
        self.wall_before = sum(timing.values()) if wall is None else wall
        now = dict(self.timing)
        self.timing = defaultdict(float, timing)
        for name in ("startup", "sft", "reward_model"):
            self.timing[name] += now.get(name, 0.0)

    @staticmethod
    def job_done() -> None:
        """A next sweep job in this process starts its clock now."""
        global _next_job
        _next_job = time.time()
