"""The end of a run in its logger: timing and throughput logged, the final metrics in W&B's run
summary, the W&B run closed with where it is and how to upload it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("larpo")


def finish_logger(logger, summary: dict, step: int) -> None:
    if logger is None:
        return
    logger.log_metrics(
        {f"timing/{k}": v for k, v in summary["timing"].items()}
        | {f"throughput/{k}": v for k, v in summary["throughput"].items()},
        step=step,
    )
    experiment = getattr(logger, "experiment", None)
    if not (hasattr(experiment, "summary") and hasattr(experiment, "finish")):  # not W&B
        logger.save()
        return
    experiment.summary.update({f"final/{k}": v for k, v in summary["final"].items()})
    run_path = Path(experiment.dir).parent
    offline = bool(getattr(experiment.settings, "_offline", False)) or os.environ.get("WANDB_MODE") == "offline"
    experiment.finish()
    if offline:
        log.info("W&B offline run: %s (upload it with: wandb sync %s)", run_path, run_path)
    else:
        log.info("W&B run: %s", getattr(experiment, "url", run_path))
