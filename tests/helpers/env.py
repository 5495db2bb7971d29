"""The environment of a larpo process a test starts: W&B offline and quiet."""

import os
import subprocess
import sys

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def env(**extra: str) -> dict[str, str]:
    """ENV with `extra` variables (e.g. PYTHONPATH for a user's module, OMP_NUM_THREADS)."""
    return {**ENV, **extra}


def sweep_cli(sweep, *overrides: str) -> subprocess.CompletedProcess:
    """`larpo -m <overrides>` into `sweep`, through the real CLI; it must succeed."""
    out = subprocess.run(
        [sys.executable, "-m", "larpo", "-m", *overrides, f"hydra.sweep.dir={sweep}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out
