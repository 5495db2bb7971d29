"""larpo: language-model alignment as retriever optimization (LarPO)."""

__version__ = "0.1.0"

import time as _time


def _process_start() -> float:
    """When this process started (epoch seconds): from /proc on Linux (to 10 ms: the process's
    age in clock ticks against the system's uptime), else now (the first larpo import)."""
    try:
        import os

        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return _time.time() - (uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return _time.time()


# the start of a run's `startup` phase (imports, compose, checks). A sweep job that runs in the
# same process after another one starts where that one ended (`larpo.run.fit` moves it).
process_started = _process_start()
