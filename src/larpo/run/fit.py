"""Fit a built run and write its summary (`<run_dir>/summary.json`, the run-summary contract)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from larpo import strict_json
from larpo.clock import PhaseClock
from larpo.loggers.finish import finish_logger
from larpo.run import jobs, resume
from larpo.run.build import BuiltRun, build

log = logging.getLogger("larpo")


def summarise(r: BuiltRun) -> dict:
    """The run summary: config, per-iteration history, final metrics, seconds per phase."""
    timing = r.loop.clock.wall_times()
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
        "memory": r.loop.clock.memory(),
        "reference_forwards": r.loop.reference.forwards,
        "data": r.data_report,
    }


def fit(r: BuiltRun) -> dict:
    """Fit a built run (with `resume` set: from `<run_dir>/checkpoints/last.ckpt` where it exists);
    write `<run_dir>/summary.json` and return the summary."""
    run_dir = Path(r.cfg.run_dir)
    ckpt = resume.checkpoint(run_dir)
    resuming = bool(r.cfg.resume) and ckpt.exists()
    if resuming:
        resume.check_checkpoint(ckpt)
    if rank_zero_only.rank == 0:  # other data-parallel ranks run this too
        OmegaConf.save(r.cfg, run_dir / "config.yaml", resolve=True)  # what `resume=` reads back
    r.loop.state.resuming = resuming
    if resuming:
        log.info("resuming from %s", ckpt)
    elif r.cfg.resume:
        log.warning(
            "resume=%s: no checkpoint there yet (the run stopped before its first epoch ended): starting it over",
            run_dir,
        )
    r.trainer.fit(r.module, datamodule=r.datamodule, ckpt_path=ckpt if resuming else None, weights_only=True)
    with r.loop.clock.phase("saving"):
        save_policy(r, run_dir / "policy")
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
    PhaseClock.job_done()  # a next sweep job in this process starts its clock here
    return summary


def save_policy(r: BuiltRun, path: Path) -> None:
    """The trained policy, `from_pretrained`-ready (e.g. for larpo-generate), where save_policy is set."""
    policy = r.module.full_policy() if r.cfg.save_policy else None  # FSDP: every rank gathers
    if policy is None or not r.trainer.is_global_zero:
        return
    if r.cfg.model.get("merge_lora") and hasattr(policy, "merge_and_unload"):
        policy = policy.merge_and_unload()  # a plain transformers model (e.g. for vLLM), not an adapter
    policy.save_pretrained(path)
    r.loop.tokenizer.save_pretrained(path)


def run(cfg: DictConfig, checked: bool = False) -> dict:
    """Build and fit the LarPO run of `cfg`; returns the summary (also in summary.json)."""
    return fit(build(cfg, checked=checked))
