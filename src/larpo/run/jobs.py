"""Sweep jobs that are not computed twice: a job that finished in its own directory is skipped, an
interrupted one resumed from its checkpoint, and a job whose config equals a finished run's, in any
experiment, reuses that run's results (`reuse=false` trains it anyway).

Finished runs are indexed by a hash of their config in `<model.cache_dir>/runs/<key>.json`, which
points at the run's `summary.json`. A reused job writes a copy of that summary into its own
directory with `reused_from` naming the original, so reports count it like any other job and say
where it came from. Imported by the command line before torch: plain files and OmegaConf only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import larpo
from larpo import strict_json
from larpo.run import resume
from larpo.shape import list_size, negatives_kept

log = logging.getLogger("larpo")

# keys that say where a job writes and how it reports, not what it computes
OUTPUT_KEYS = ("run_dir", "resume", "progress", "logger", "save_policy", "threads")
# keys that say which experiment a run belongs to and how it is drawn: runs of two experiments
# with equal configs but for these compute the same thing
REPORT_KEYS = ("experiment_name", "report", "reuse")


def comparable(config: dict) -> dict:
    """What a job computes: its config without the keys of where it writes and how it reports."""
    return {k: v for k, v in config.items() if k not in OUTPUT_KEYS}


def reusable(config: dict) -> dict:
    """What a run computes, whichever experiment ran it: `comparable`, without the experiment's
    name and report, the evaluation cache switch and any nested progress flag."""

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "progress"}
        return node

    out = {k: v for k, v in comparable(config).items() if k not in REPORT_KEYS}
    if isinstance(out.get("eval"), dict):
        out["eval"] = {k: v for k, v in out["eval"].items() if k != "cache"}
    return resolve_list(strip(out))


def resolve_list(config: dict) -> dict:
    """The list a run samples and keeps, as numbers: `candidate_list.size: null` (as many as the
    objective keeps) and `keep.negatives: null` (all but the positives) are the sizes they mean, so
    Table 3's pairwise with size null is the same run as Table 4's with size 2."""
    try:
        node = OmegaConf.create(config)
        k, negatives = list_size(node), negatives_kept(node)
    except (AttributeError, KeyError, TypeError, ValueError):  # not a full run config
        return config
    lists = {**config["candidate_list"], "size": k}
    keep = {**config["objective"]["keep"], "negatives": negatives}
    return {**config, "candidate_list": lists, "objective": {**config["objective"], "keep": keep}}


def _container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def finished_job(cfg: DictConfig) -> dict | None:
    """The summary of this sweep job's directory when it finished with this very config."""
    path = Path(cfg.run_dir) / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s is unreadable: the job runs again", path)
        return None
    if comparable(summary.get("config", {})) != comparable(_container(cfg)):
        log.warning("%s holds another config's results: the job runs again", path)
        return None
    return summary


def interrupted_job(cfg: DictConfig) -> DictConfig:
    """A sweep job that stopped after a checkpoint, with this config: resumed from it (run/resume.py)."""
    out = resume.interrupted_job(cfg, comparable)
    if out.resume:
        log.info("resuming the interrupted job in %s", out.run_dir)
    return out


def index_path(config: dict) -> Path:
    """The index entry of a run with this config (the package version is part of the key)."""
    parts = {"version": larpo.__version__, "config": reusable(config)}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache_dir = (config.get("model") or {}).get("cache_dir") or "~/.cache/larpo"
    return Path(cache_dir).expanduser() / "runs" / f"{key}.json"


def register(config: dict, summary_path: Path) -> None:
    """Index a finished run so that later jobs with its config reuse it."""
    entry = index_path(config)
    try:
        strict_json.write_atomic(entry, {"summary": str(summary_path.resolve())})
    except OSError as err:  # an unwritable cache costs reuse, never the run
        log.warning("could not index the run in %s (%s)", entry, err)


def earlier_run(cfg: DictConfig) -> tuple[dict, Path] | None:
    """(summary, its path) of a finished run with this job's config, where `reuse` allows it."""
    if not cfg.get("reuse", True):
        return None
    config = _container(cfg)
    entry = index_path(config)
    try:
        summary_path = Path(json.loads(entry.read_text())["summary"])
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError, KeyError, TypeError):  # no entry, or the run was moved or deleted
        return None
    if summary.get("reused_from") or reusable(summary.get("config", {})) != reusable(config):
        return None
    if summary_path.parent.resolve() == Path(cfg.run_dir).resolve():
        return None
    return summary, summary_path


def reuse(cfg: DictConfig, summary: dict, source: Path) -> dict:
    """Write `summary` (an earlier run's) as this job's, with this job's config and `reused_from`."""
    copy = {**summary, "config": _container(cfg), "reused_from": str(source.parent)}
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(strict_json.dumps(copy, indent=2))
    log.info("same config as %s: its results reused (reuse=false trains again)", source.parent)
    return copy
