"""Evaluate a finished run's saved policy again, with the run's own evaluation and other settings.

The run's overrides (its .hydra/overrides.yaml) are composed again with yours on top, and the
run's test evaluation (`larpo.run.build.build_evaluator`, the same prompts, judge and metrics) is
applied to <run>/policy. Nothing is trained. For the variance study (smollm2_variance): the same
trained policy under other evaluation seeds.

    python experiments/evaluate_policy.py RUN_DIR eval.seed=1 [--out FILE]

It prints one strict-JSON line: {"run": ..., "overrides": [...], "metrics": {...}, "seconds": ...};
--out appends the line to FILE (JSON lines). The win rate is against the policy itself (0.5):
compare accuracies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

from larpo.config.compose import compose
from larpo.models.policy import load_policy
from larpo.run import build
from larpo.shape import Shape
from larpo.strict_json import dumps


def evaluate(run_dir: Path, overrides: list[str]) -> dict:
    run_overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    cfg = compose([*run_overrides, *overrides, f"run_dir={run_dir}"])
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    source = build.build_source(cfg, Shape.of(cfg).prompts)
    generator = build.instantiate(build.component(cfg.generator, "generator"))
    evaluator = build.build_evaluator(cfg, source, generator)
    if evaluator is None:
        raise SystemExit(f"evaluate_policy: {run_dir} has no held-out evaluation")
    evaluator = getattr(evaluator, "test", evaluator)  # the test split only
    policy, tokenizer = load_policy(str(run_dir / "policy"), trust_remote_code=cfg.model.trust_remote_code)
    policy.eval()
    start = time.perf_counter()
    with torch.no_grad():
        metrics = evaluator(policy, tokenizer)
    return {
        "run": str(run_dir),
        "overrides": overrides,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not (args.run / "policy").is_dir():
        raise SystemExit(f"evaluate_policy: {args.run}/policy is missing (the run had save_policy=false?)")
    line = dumps(evaluate(args.run, args.overrides))
    print(line)
    if args.out:
        with args.out.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
