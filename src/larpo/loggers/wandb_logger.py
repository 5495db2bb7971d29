"""The W&B logger of `logger=wandb`: offline unless told otherwise, one W&B run per run directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger


def wandb_logger(save_dir: str, project: str, mode: str, group: str | None, config: dict):
    """A Lightning WandbLogger whose run id follows from the run directory, so a resumed run
    continues the same W&B run and two runs never share one."""
    os.environ.setdefault("WANDB_MODE", mode)
    os.environ.setdefault("WANDB_SILENT", "true")  # larpo says where the run is and how to sync it
    os.environ.setdefault("WANDB_CONSOLE", "off")  # larpo's own console stays readable
    run_id = hashlib.sha1(str(Path(save_dir).resolve()).encode()).hexdigest()[:12]
    logger = WandbLogger(
        id=run_id,
        resume="allow",
        project=project,
        group=group,
        save_dir=save_dir,
        offline=mode == "offline",
        config=config,
    )
    # Lightning passes anonymous=None, which W&B answers with a deprecation warning on every run
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger
