"""What a person sees while a run works: one progress bar that log lines never break, a bar that
counts iterations (not Lightning's global epochs), periodic progress lines when output goes to a
file (a cluster job, nohup), and known third-party noise silenced at its source."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from tqdm.auto import tqdm

log = logging.getLogger("larpo")


def interactive() -> bool:
    return sys.stderr.isatty()


class _TqdmHandler(logging.StreamHandler):
    """Writes a log line through tqdm, which clears an active bar, prints, and redraws it."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never break a run
            self.handleError(record)


class _DropMessages(logging.Filter):
    def __init__(self, *parts: str):
        super().__init__()
        self.parts = parts

    def filter(self, record):
        return not any(p in record.getMessage() for p in self.parts)


def setup() -> None:
    """Route console log lines through tqdm and silence the known noise, each at its source."""
    root = logging.getLogger()
    # data parallelism: the other ranks' progress repeats rank 0's; their log files keep it all
    other_rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) > 0
    for i, handler in enumerate(root.handlers):
        if type(handler) is logging.StreamHandler:
            routed = _TqdmHandler(handler.stream)
            routed.setFormatter(handler.formatter)
            routed.setLevel(logging.WARNING if other_rank else handler.level)
            root.handlers[i] = routed
    # Lightning's advertisement, and the hardware lines that say nothing on a CPU run
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        _DropMessages("litlogger", "TPU available", "HPU available")
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning on torch 2.13
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")  # small smoke runs
    warnings.filterwarnings("ignore", message=r".*`gradient_checkpointing_enable` is deprecated.*")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" on every save and load


class IterationBar(TQDMProgressBar):
    """Lightning's tqdm bar, described as larpo counts: `iteration 2/3, epoch 1/2`."""

    def __init__(self, describe):
        super().__init__(leave=False)
        self.describe = describe

    def on_train_epoch_start(self, trainer, *args):
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(self.describe(trainer))


class ProgressLines(pl.Callback):
    """A log line every `every` seconds of training when there is no terminal to draw a bar on."""

    def __init__(self, describe, every: float = 30.0):
        self.describe, self.every, self._last = describe, every, 0.0

    def on_train_epoch_start(self, trainer, *args):
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        loss = trainer.callback_metrics.get("train/loss", trainer.callback_metrics.get("sft/loss"))
        shown = f", loss {float(loss):.4f}" if loss is not None else ""
        log.info("%s: batch %d/%s%s", self.describe(trainer), batch_idx + 1, trainer.num_training_batches, shown)


def progress_callbacks(enabled: bool, describe) -> list[pl.Callback]:
    """A bar in a terminal, periodic lines otherwise; nothing when progress is off."""
    if not enabled:
        return []
    return [IterationBar(describe)] if interactive() else [ProgressLines(describe)]
