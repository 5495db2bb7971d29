"""How noisy is evaluation? The final policy of each run evaluated with two evaluation seeds,
against the spread of the final metric between training seeds.


    python experiments/eval_noise.py multirun/<sweep>        # the runs of a sweep (one per seed)

For the sampled metrics (8 samples per prompt; the win rate against the SFT policy's samples) and
the exact ones (computed from the distributions, so no evaluation seed enters them): the
|difference| between two evaluation seeds of one policy, and the standard deviation between the
training seeds' final values. Prints one JSON line.
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


METRICS = (
    "win_rate_vs_sft",
    "exact_win_rate_vs_sft",
    "gold_reward",
    "exact_gold_reward",
    "accuracy_sampled",
    "exact_accuracy",
)


def main(root: Path) -> dict:
    """One policy (the first run's) evaluated with two evaluation seeds; the spread of the final
    metric between the training seeds from every run's summary."""
    runs = sorted({p.parent for p in root.rglob("summary.json") if (p.parent / "policy").is_dir()})
    a, b = evaluate(runs[0], 1001), evaluate(runs[0], 2002)
    finals = [json.loads((run / "summary.json").read_text())["final"] for run in runs]
    out = {"runs": len(runs), "policy": str(runs[0])}
    for metric in METRICS:
        if metric in a:
            values = [f[metric] for f in finals if metric in f]
            out[metric] = {
                "eval_seed_diff": round(abs(a[metric] - b[metric]), 5),
                "training_seed_sd": round(statistics.stdev(values), 5) if len(values) > 1 else None,
            }
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
