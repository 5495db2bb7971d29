"""How noisy is evaluation? The final policy of each run evaluated with two evaluation seeds,
against the spread of the final metric between training seeds.

    python experiments/eval_noise.py multirun/<sweep>        # the runs of a sweep (one per seed)

For the sampled win rate (8 samples per prompt against the SFT policy's samples) and the exact one
(`exact_win_rate_vs_sft`, computed from the distributions, so no evaluation seed enters it):
the mean |difference| between two evaluation seeds of one policy, and the standard deviation
between the training seeds' values. Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from larpo.generation.hf import HFGenerator
from larpo.models.policy import load_policy
from larpo.run.build import build_evaluator, build_source


def evaluate(run: Path, eval_seed: int) -> dict:
    cfg = OmegaConf.load(run / "config.yaml")
    source = build_source(cfg, 0)
    generator = HFGenerator(progress=False)
    evaluator = build_evaluator(cfg, source, generator)
    evaluator.seed = eval_seed
    sft, tok = load_policy(str(source.sft(cfg.model, cfg.seed, progress=False)))
    evaluator.set_baseline(sft, tok)
    policy, _ = load_policy(str(run / "policy"))
    return evaluator(policy, tok)


def main(root: Path) -> dict:
    runs = sorted({p.parent for p in root.rglob("summary.json") if (p.parent / "policy").is_dir()})
    out = {"runs": len(runs)}
    per_metric: dict[str, tuple[list[float], list[float]]] = {}
    for run in runs:
        a, b = evaluate(run, 1001), evaluate(run, 2002)
        for metric in ("win_rate_vs_sft", "exact_win_rate_vs_sft", "accuracy_sampled", "exact_accuracy"):
            if metric in a:
                diffs, values = per_metric.setdefault(metric, ([], []))
                diffs.append(abs(a[metric] - b[metric]))
                values.append(a[metric])
    for metric, (diffs, values) in per_metric.items():
        out[metric] = {
            "eval_seed_abs_diff": statistics.fmean(diffs),
            "training_seed_sd": statistics.stdev(values) if len(values) > 1 else None,
        }
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
