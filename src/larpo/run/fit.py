"""Fit a built run and write its summary (`<run_dir>/summary.json`, the run-summary contract)."""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

import larpo
from larpo import strict_json
from larpo.config.fields import ConfigError
from larpo.loggers.finish import finish_logger
from larpo.run import jobs
from larpo.run.build import BuiltRun, build

log = logging.getLogger("larpo")


def summarise(r: BuiltRun) -> dict:
    """The run summary: config, per-iteration history, final metrics, seconds per phase."""
    timing = r.loop.wall_times()
    gen = r.generator
    throughput = {  # generation counts every generate call (sampling and evaluation)
        "generation_tokens_per_s": gen.tokens / max(gen.seconds, 1e-9),
        "training_tokens_per_s": int(r.module.tokens) / max(timing.get("training", 0.0), 1e-9),
    }
    last = r.loop.metrics[-1] if r.loop.metrics else {}  # no metrics without a gold judge
    return {
        "config": OmegaConf.to_container(r.cfg, resolve=True),
        "history": r.loop.metrics,
        "final": {k: v for k, v in last.items() if k not in ("iteration", "dropped", "list_stats")},
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "throughput": {k: round(v, 1) for k, v in throughput.items()},
        "memory": r.loop.memory(),
        "reference_forwards": r.loop.reference.forwards,
        "data": r.data_report,
    }


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


def fit(r: BuiltRun) -> dict:
    """Fit a built run (with `resume` set: from `<run_dir>/checkpoints/last.ckpt` where it exists);
    write `<run_dir>/summary.json` and return the summary."""
    run_dir = Path(r.cfg.run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = bool(r.cfg.resume) and ckpt.exists()
    if resume:
        check_checkpoint(ckpt)
    if rank_zero_only.rank == 0:  # other data-parallel ranks run this too
        OmegaConf.save(r.cfg, run_dir / "config.yaml", resolve=True)  # what `resume=` reads back
    r.loop.resuming = resume
    if resume:
        log.info("resuming from %s", ckpt)
    elif r.cfg.resume:
        log.warning(
            "resume=%s: no checkpoint there yet (the run stopped before its first epoch ended): starting it over",
            run_dir,
        )
    r.trainer.fit(r.module, datamodule=r.datamodule, ckpt_path=ckpt if resume else None, weights_only=True)
    start = time.perf_counter()
    policy = r.module.full_policy() if r.cfg.save_policy else None  # FSDP: every rank gathers
    if policy is not None and r.trainer.is_global_zero:  # from_pretrained-ready, e.g. for larpo-generate
        if r.cfg.model.get("merge_lora") and hasattr(policy, "merge_and_unload"):
            policy = policy.merge_and_unload()  # a plain transformers model (e.g. for vLLM), not an adapter
        policy.save_pretrained(run_dir / "policy")
        r.loop.tokenizer.save_pretrained(run_dir / "policy")
    r.loop.timing["saving"] += time.perf_counter() - start
    summary = summarise(r)
    if not r.trainer.is_global_zero:  # under data parallelism rank zero reports for all
        return summary
    (run_dir / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    jobs.register(summary["config"], run_dir / "summary.json")  # later jobs with this config reuse it
    finish_logger(r.trainer.logger, summary, r.trainer.global_step)
    log.info("seconds per phase: %s", ", ".join(f"{k} {v:.1f}" for k, v in summary["timing"].items()))
    memory = summary["memory"]
    log.info(
        "peak memory %.0f MB; raised by %s",
        memory["peak_rss_mb"],
        ", ".join(f"{k} {v:.0f}" for k, v in sorted(memory["rise_mb"].items(), key=lambda kv: -kv[1])),
    )
    log.info("tokens per second: %s", ", ".join(f"{k} {v:.0f}" for k, v in summary["throughput"].items()))
    log.info("run finished in %.0f s: %s", summary["timing"]["total"], run_dir / "summary.json")
    larpo.process_started = time.time()  # a next sweep job in this process starts its clock here
    return summary


def run(cfg: DictConfig, checked: bool = False) -> dict:
    """Build and fit the LarPO run of `cfg`; returns the summary (also in summary.json)."""
    return fit(build(cfg, checked=checked))
