"""Resuming, in one place: the checkpoint a run directory holds, whether it can be read, how it is
written, and the loop's state in it. Every resume path goes through here: `larpo resume=<run>` (a
stopped run, or a finished one given more iterations) and a sweep's interrupted job
(run/jobs.py); the lock (run/lock.py) keeps a directory to one process.

Plain files and OmegaConf at import: the command line reads a resume's config before torch.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from larpo.fields import ConfigError
from larpo.run import lock

# keys a resumed run may change: how it reports, not what it computes
RESUME_SAFE = ("progress", "logger", "save_policy", "threads", "trainer.log_every_n_steps")


def checkpoint(run_dir: str | Path) -> Path:
    """Where a run keeps the trainer state it resumes from."""
    return Path(run_dir) / "checkpoints" / "last.ckpt"


def resumed(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """`resume=<run_dir>`: that run's config (its `config.yaml`), with the overrides that are safe
    to change applied. An override that gives the stored value again (the run's own command with
    `resume=` added) changes nothing and passes; any other is refused, never dropped silently.
    `iterations=N` above the run's own extends it (a finished run continues from its last iteration)."""
    run_dir = Path(cfg.resume).expanduser()
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError("resume", cfg.resume, "holds no config.yaml", "give the directory of a larpo run")
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("RANK", "0") == "0":  # not a launched rank
        lock.check_free(run_dir)  # before Hydra writes into it: a directory another process runs in is left alone
    old = OmegaConf.load(saved)
    changed = [o for o in overrides if not o.startswith(("resume=", "hydra."))]
    if "iterations" in {o.split("=", 1)[0] for o in changed}:
        if cfg.iterations < old.iterations:
            raise ConfigError(
                "iterations",
                cfg.iterations,
                f"fewer than the {old.iterations} of the run being resumed",
                f"give iterations>={old.iterations} to extend it, or drop iterations=",
            )
        changed = [o for o in changed if o.split("=", 1)[0] != "iterations"]
        with open_dict(old):
            old.iterations = cfg.iterations
    unsafe = [o for o in changed if not _key(o).startswith(RESUME_SAFE) and not _same(cfg, old, o)]
    if unsafe:
        raise ConfigError(
            "resume",
            cfg.resume,
            f"a resumed run keeps its config, so {' '.join(unsafe)} cannot apply",
            f"drop them (only {', '.join(RESUME_SAFE)} and iterations may change), or start a new run",
        )
    with open_dict(old):
        for o in changed:
            if _key(o).startswith(RESUME_SAFE):
                OmegaConf.update(old, _key(o), OmegaConf.select(cfg, _key(o)), merge=False)
        old.run_dir, old.resume = str(run_dir), str(run_dir)
    return old


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _same(cfg: DictConfig, old: DictConfig, override: str) -> bool:
    """Whether `override` gives the resumed run what it has already: a key or group node equal to
    the stored one, or a preset (`size=smoke`) whose every key the stored config holds as it sets it."""
    key = _key(override)
    if OmegaConf.select(cfg, key, default=None) is not None or OmegaConf.select(old, key, default=None) is not None:
        return _plain(OmegaConf.select(cfg, key, default=None)) == _plain(OmegaConf.select(old, key, default=None))
    from larpo.config.compose import compose  # a preset of the global package: the keys it sets

    try:
        base, preset = (OmegaConf.to_container(compose(o), resolve=False) for o in ([], [override]))
    except Exception:  # not an option composition knows: refused as before
        return False
    touched = [k for k in _differing(base, preset) if k not in ("run_dir", "hydra")]
    return bool(touched) and all(
        _plain(OmegaConf.select(cfg, k, default=None)) == _plain(OmegaConf.select(old, k, default=None))
        for k in touched
    )


def _differing(a, b, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two plain containers."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differing(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def interrupted_job(cfg: DictConfig, comparable) -> DictConfig:
    """A sweep job that stopped after a checkpoint, with this config: resumed from it.
    `comparable(config)`: what a job computes (run/jobs.py), to tell the same job from another."""
    job_dir = Path(cfg.run_dir)
    saved = job_dir / "config.yaml"
    if not checkpoint(job_dir).exists() or not saved.is_file():
        return cfg
    old = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    if comparable(old) != comparable(OmegaConf.to_container(cfg, resolve=True)):
        return cfg
    with open_dict(cfg):
        cfg.resume = str(job_dir)
    return cfg


def check_checkpoint(ckpt: Path) -> None:
    """A checkpoint that cannot be read (a truncated copy, a full disk) stops the resume in one line;
    nothing is written or removed. A torch checkpoint is a zip file whose directory sits at its end,
    so a truncated one is found without loading any weights; a sharded one is a folder with metadata."""
    readable = (ckpt / ".metadata").is_file() if ckpt.is_dir() else zipfile.is_zipfile(ckpt)
    if not readable:
        raise ConfigError(
            "resume",
            str(ckpt.parent.parent),
            f"{ckpt} is truncated or not a checkpoint",
            f"move it away to start the run over from its first iteration (mv {ckpt} {ckpt}.bad), or restore it",
        )


def save_checkpoint(trainer, checkpoint_dir: Path) -> None:
    """Save the trainer state (policy, optimizer, loops, the loop callback) atomically: a run
    killed while saving keeps its previous checkpoint."""
    path = checkpoint_dir / "last.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".ckpt.tmp")
    trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer and loops too
    if trainer.is_global_zero:  # only rank zero moves it (every rank has written its part)
        if path.is_dir():  # FSDP: a distributed checkpoint is a folder of shards
            shutil.rmtree(path)
        os.replace(tmp, path)


class LoopResume:
    """The loop's side of a resume. Lightning restores the callback's state before `on_fit_start`
    under most strategies, after it under FSDP; either way the loop rebuilds once, from the pool
    files. A finished run given more iterations samples its next iteration at train start, once
    the trainer has restored the run's weights."""

    def __init__(self):
        self.resuming = False  # fit sets it when a checkpoint will be restored
        self._restore_on_load = False
        self._extend = False

    def at_fit_start(self, loop) -> bool:
        """True when the loop resumes (it must not evaluate or sample its first iteration)."""
        if loop.iteration > 0:  # state restored from a checkpoint: rebuild from the pool files
            self._restore(loop)
            return True
        if self.resuming:  # FSDP restores callbacks after this hook: `load` rebuilds then
            self._restore_on_load = True
            return True
        return False

    def extend_now(self) -> bool:
        extend, self._extend = self._extend, False
        return extend

    def _restore(self, loop) -> None:
        loop.restore()
        # a finished run given more iterations (`larpo resume=<run> iterations=N`): its last
        # iteration is trained and evaluated, so the next one is sampled before training goes on
        self._extend = loop.trained == loop.iteration < loop.iterations

    @staticmethod
    def save(loop) -> dict:
        """Plain data only (a checkpoint loads with weights_only=True); pools live in their files."""
        clock = loop.clock.state()
        return {
            "iteration": loop.iteration,
            "metrics": loop.metrics,
            "timing": clock["timing"],
            "reference_forwards": loop.reference.forwards,
            "dropped": loop.step.latest.dropped,
            "list_stats": loop.step.latest.lists,
            "trained": loop.trained,
            "wall": clock["wall"],
        }

    def load(self, loop, state: dict) -> None:
        loop.iteration, loop.metrics = state["iteration"], state["metrics"]
        loop.reference.forwards = state["reference_forwards"]
        loop.step.resumed(state["dropped"], state.get("list_stats", {}))
        # checkpoints from before `trained` was kept: a run whose last evaluation is of its current
        # iteration had finished it (mid-iteration checkpoints hold the evaluation before)
        finished = bool(loop.metrics) and loop.metrics[-1].get("iteration") == loop.iteration
        loop.trained = state.get("trained", loop.iteration if finished else loop.iteration - 1)
        loop.clock.restore(state["timing"], state.get("wall"))
        if self._restore_on_load:
            self._restore_on_load = False
            self._restore(loop)
