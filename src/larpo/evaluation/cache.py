"""The SFT policy's evaluation, computed once per (SFT policy, evaluation config) and reused.

Every job of a sweep that starts from the same SFT policy evaluates it on the same held-out prompts
with the same seeded samples, so its metrics (iteration 0, the sharpening control included) and the
baseline later evaluations compare against (its samples' rewards, judged lists, exact distribution)
are the same numbers in every job. The first job stores them in
`<model.cache_dir>/evaluations/<key>.json`; the others read them. The key hashes everything those
numbers depend on: the policy (its path and the size and modification time of its files), the
held-out prompts themselves, the data, eval and generator nodes, the seed, the device and the
number of torch threads. `eval.cache=false`
computes them in every job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from larpo import strict_json

log = logging.getLogger("larpo")

# bump when its metrics, state or draws change (2: greedy; 3: lengths; 4: by prefix; 5: full batches;
# 6: per-answer random streams)
VERSION = 6


def policy_identity(path: str) -> list:
    """A local policy directory's files (name, size, mtime): retraining it changes the key. A hub
    id is its name (its files are fetched and fixed by revision)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return [path]
    return [str(folder.resolve())] + [
        [f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(folder.iterdir()) if f.is_file()
    ]


def cache_path(
    cfg: DictConfig, policy_path: str, prompts: list[str], hardware: dict | None = None, judge=None
) -> Path | None:
    """Where the SFT evaluation of this run is cached; None with `eval.cache=false`. `hardware`
    (the device and the torch thread count) is part of the key: they change the order of
    floating-point sums, so a cached evaluation is the one this process would compute, to the digit.
    `judge`: the config node of the reward model that judges held-out samples, if one does."""
    if not cfg.eval.get("cache", True):
        return None

    def node(name: str, drop: tuple[str, ...]) -> dict:
        values = OmegaConf.to_container(cfg[name], resolve=True)
        return {k: v for k, v in values.items() if k not in drop}

    parts = {
        "version": VERSION,
        "policy": policy_identity(policy_path),
        "prompts": hashlib.sha256("\n".join(prompts).encode()).hexdigest(),
        "data": node("data", ("prompts_per_iteration",)),  # training prompts do not touch evaluation
        "eval": node("eval", ("every_iteration", "cache")),
        "generator": node("generator", ("progress",)),
        "seed": cfg.seed,
        "hardware": hardware or {},
        "judged_by": OmegaConf.to_container(judge, resolve=True) if judge is not None else None,  # a reward model
    }
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cfg.model.cache_dir).expanduser() / "evaluations" / f"sft-{key}.json"


def load(path: Path | None) -> dict | None:
    """{"metrics", "state"} of a cached SFT evaluation, or None (none yet, or unreadable)."""
    if path is None or not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
        return cached if {"metrics", "state"} <= set(cached) else None
    except (OSError, ValueError):
        log.warning("%s is unreadable: the SFT policy is evaluated again", path)
        return None


def save(path: Path | None, metrics: dict, state: dict) -> None:
    """Write atomically: parallel jobs of one seed may finish the same evaluation together."""
    if path is None:
        return
    try:
        strict_json.write_atomic(path, {"metrics": metrics, "state": state})
    except OSError as err:  # a read-only cache costs time, never the run
        log.warning("could not cache the SFT evaluation in %s (%s)", path, err)
