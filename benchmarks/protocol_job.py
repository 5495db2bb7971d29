"""Where a protocol job's time goes: one job of the paper protocol by phase, and one evaluation of
one policy by part, each with its baseline measured in the same run.

    python benchmarks/protocol_job.py [--experiment table3_objectives] [--setting objective=listmle]
    python benchmarks/protocol_job.py --skip-job          # the evaluation alone (about a minute)

1. The job (`larpo -m experiment=<experiment> <setting> seed=0`, one process, `threads` as given)
   twice: with `eval.cache=false` (the SFT policy evaluated inside the job, as before the cache:
   the baseline) and with the cache warm (what every job after the first of a seed pays; a short
   job of the same seed fills it first). Seconds per phase from each job's summary.json.
2. One evaluation of the seed's SFT policy on the held-out prompts, part by part: greedy decoding,
   8 samples per prompt, the ranking log-probs, and the exact evaluation's window scored with the
   prompt's KV cache shared by its answers against scoring each (prompt, answer) pair whole (the
   baseline). Generation is compared with its forward-pass limit: the same number of single-token
   KV-cache forward passes, bare (prompt pass, then one pass per new token, no sampling logic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LARPO = str(Path(sys.executable).parent / "larpo")


def job_phases(experiment: str, setting: str, sweep: Path, threads: int, *extra: str) -> dict[str, float]:
    cmd = [LARPO, "-m", f"experiment={experiment}", setting, "seed=0", "progress=false", "logger=csv"]
    cmd += [f"threads={threads}", "reuse=false", f"hydra.sweep.dir={sweep}", *extra]
    out = subprocess.run(cmd, env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the job failed:\n{out.stderr[-2000:]}")
    return json.loads((sweep / "0" / "summary.json").read_text())["timing"]


def evaluation_parts(experiment: str, threads: int) -> list[tuple[str, float, str]]:
    import torch

    from larpo.config.compose import compose
    from larpo.config.schema import component
    from larpo.evaluation.exact import window_logps
    from larpo.models.policy import load_policy
    from larpo.run.build import build_evaluator, build_source, initial_policy
    from larpo.sequences import cache_key, encode_prompt, encode_prompts, encode_response, output_cache, sequence_logps

    torch.set_num_threads(threads)
    cfg = compose([f"experiment={experiment}", "run_dir=.", "progress=false"])
    from hydra.utils import instantiate

    source = build_source(cfg, cfg.data.prompts_per_iteration)
    policy, tok = load_policy(initial_policy(cfg, source))
    generator = instantiate(component(cfg.generator, "generator"))
    evaluator = build_evaluator(cfg, source, generator)
    prompts, k = evaluator.prompts, cfg.eval.samples
    rows = []

    def timed(name, make, note=""):
        start = time.perf_counter()
        out = make()
        rows.append((name, time.perf_counter() - start, note))
        return out

    timed("greedy decoding (1 per prompt)", lambda: generator(policy, tok, prompts, 1, 0.0, 1, desc="greedy"))
    sampled = timed(f"sampling ({k} per prompt)", lambda: generator(policy, tok, prompts, k, 1.0, 1, desc="sample"))

    @torch.no_grad()
    def forward_limit(batch: int = 1024 // k) -> None:
        steps = generator.max_new_tokens
        for start in range(0, len(prompts), batch):
            enc = encode_prompts(tok, prompts[start : start + batch], padding=True, return_tensors="pt")
            ids, mask = enc["input_ids"].repeat_interleave(k, 0), enc["attention_mask"].repeat_interleave(k, 0)
            out = policy(input_ids=ids, attention_mask=mask, use_cache=True)
            cache = output_cache(out)
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(steps - 1):
                mask = torch.cat([mask, torch.ones_like(token)], 1)
                out = policy(input_ids=token, attention_mask=mask, use_cache=True, **{cache_key(policy): cache})
                token = out.logits[:, -1].argmax(-1, keepdim=True)

    timed(f"  baseline: bare forward passes ({k} per prompt)", forward_limit, "the generation limit")
    evaluator.set_baseline(policy, tok, sampled)
    timed("ranking log-probs (judged lists)", lambda: evaluator._ranking(policy, tok))
    exact = evaluator.exact
    if exact is not None:
        n = sum(map(len, exact.windows))
        timed(
            f"exact evaluation ({n} answers), shared prompt cache",
            lambda: window_logps(policy, tok, exact.prompts, exact.windows),
        )
        windows = zip(exact.prompts, exact.windows, strict=True)
        pairs = [(encode_prompt(tok, p), encode_response(tok, a)) for p, w in windows for a in w]
        timed("  baseline: each (prompt, answer) pair whole", lambda: sequence_logps(policy, pairs, tok.pad_token_id))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="table3_objectives")
    parser.add_argument("--setting", default="objective=listmle")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-job", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {args.threads} thread(s); experiment={args.experiment} {args.setting} seed=0\n")
    if not args.skip_job:
        with tempfile.TemporaryDirectory() as d:
            before = job_phases(args.experiment, args.setting, Path(d) / "a", args.threads, "eval.cache=false")
            # fills the cache: the SFT evaluation's key leaves out how long the job trains
            job_phases(
                args.experiment, args.setting, Path(d) / "warm", args.threads, "iterations=1", "epochs_per_iteration=1"
            )
            after = job_phases(args.experiment, args.setting, Path(d) / "b", args.threads)
        print("| phase | SFT evaluated in the job (eval.cache=false; baseline) | SFT evaluation cached |")
        print("|---|---|---|")
        for phase in before:
            print(f"| {phase} | {before[phase]:.1f} s | {after.get(phase, 0.0):.1f} s |")
        print(f"| ratio of totals | 1.00x | {after['total'] / before['total']:.2f}x |\n")
    rows = evaluation_parts(args.experiment, args.threads)
    print("| one evaluation of the SFT policy | seconds | ratio to its baseline |")
    print("|---|---|---|")
    for i, (name, seconds, _) in enumerate(rows):
        base = rows[i + 1][1] if i + 1 < len(rows) and rows[i + 1][0].startswith("  baseline") else None
        ratio = f"{seconds / base:.2f}x" if base else ("1.00x" if name.startswith("  baseline") else "")
        print(f"| {name} | {seconds:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
