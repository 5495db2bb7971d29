"""The variance study's quantities (src/larpo/conf/experiment/smollm2_variance.yaml), written
before its results: where the variance of test accuracy_sampled comes from, and each lever's
paired SD of ListMLE - DPO, the seeds it needs for a 95% half-width of 0.04 and their compute.

    python experiments/smollm2_variance.py [multirun/smollm2_variance] [--out docs/results/smollm2_variance]

It prints a markdown report; --out also writes report.md and variance.json there (strict JSON).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from larpo.report.collect import RunResult, collect, job_overrides, seed_of
from larpo.report.stats import paired, seeds_for
from larpo.strict_json import loads, read_lines, write_atomic

METRIC = "accuracy_sampled"
LISTMLE, DPO = "method=smollm2_listmle", "method=smollm2_dpo"
HALF_WIDTH = 0.04
CELLS = {  # cell -> (its folder, the override that makes it, beyond the arm)
    "base": ("base", ""),
    "k8": ("k8", "candidate_list.size=8"),
    "hardest": ("hardest", "negatives=hardest"),
    "p64": ("p64", "data.prompts_per_iteration=64"),
}


def sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def arm_runs(runs: list[RunResult], arm: str, extra: str) -> dict[int, RunResult]:
    """The runs of `arm` whose setting is exactly the arm plus `extra` (seed apart)."""
    want = set(f"{arm} {extra}".split())
    return {r.seed: r for r in runs if set(r.setting.split()) == want}


def cell_stats(sweep_runs: list[RunResult], base_dpo: dict[int, RunResult], extra: str) -> dict:
    listmle = arm_runs(sweep_runs, LISTMLE, extra)
    # k8 changes ListMLE alone: its pair is the base DPO run of the same seed (the same streams)
    dpo = arm_runs(sweep_runs, DPO, extra) if "candidate_list.size" not in extra else base_dpo
    a = {s: r.final[METRIC] for s, r in listmle.items()}
    b = {s: r.final[METRIC] for s, r in dpo.items()}
    diff = paired(a, b)
    walls = [r.wall for r in [*listmle.values(), *dpo.values()] if r.wall]
    # the seconds one seed of the cell costs: its ListMLE job and its DPO job
    per_seed = 2 * statistics.fmean(walls) if walls else None
    out = {
        "seeds": sorted(set(a) & set(b)),
        "listmle_mean": statistics.fmean(a.values()) if a else None,
        "dpo_mean": statistics.fmean(b.values()) if b else None,
        "listmle_sd": sd(list(a.values())),
        "dpo_sd": sd(list(b.values())),
        "diff_mean": diff.mean if diff else None,
        "diff_sd": diff.sd if diff else None,
        "seconds_per_seed": per_seed,
    }
    if diff and diff.sd:
        n = seeds_for(diff.sd, HALF_WIDTH)
        out["seeds_needed"] = n
        out["compute_h"] = n * per_seed / 3600 if per_seed else None
    return out


def eval_share(path: Path) -> dict:
    """The SD that the evaluation's sampling alone adds: each base policy evaluated again with
    eval.seed=1 (eval.jsonl), against its own run's result (eval.seed=0)."""
    pairs: dict[str, dict[int, tuple[float, float]]] = {LISTMLE: {}, DPO: {}}
    for _, record, _ in read_lines(path) if path.exists() else []:
        if not record:
            continue
        job = Path(record["run"])
        arm = next(o for o in job_overrides(job) if o.startswith("method="))
        first = loads((job / "summary.json").read_text())["final"][METRIC]
        pairs[arm][int(seed_of(job))] = (first, record["metrics"][METRIC])
    out: dict = {"policies": sum(len(p) for p in pairs.values())}
    for arm, by_seed in pairs.items():
        d = [(x - y) ** 2 / 2 for x, y in by_seed.values()]
        out[arm] = math.sqrt(statistics.fmean(d)) if d else None
    common = sorted(set(pairs[LISTMLE]) & set(pairs[DPO]))
    # d = ListMLE - DPO under each evaluation seed, the same trained policies
    dd = [
        ((pairs[LISTMLE][s][0] - pairs[DPO][s][0]) - (pairs[LISTMLE][s][1] - pairs[DPO][s][1])) ** 2 / 2 for s in common
    ]
    out["diff"] = math.sqrt(statistics.fmean(dd)) if dd else None
    return out


def fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def study(root: Path) -> dict:
    sweep = collect(*[root / folder for folder, _ in CELLS.values() if (root / folder).is_dir()])
    base_dpo = arm_runs(sweep.runs, DPO, "")
    cells = {name: cell_stats(sweep.runs, base_dpo, extra) for name, (_, extra) in CELLS.items()}
    base = cells["base"]
    var_l, var_d = (base["listmle_sd"] or 0) ** 2, (base["dpo_sd"] or 0) ** 2
    ev = eval_share(root / "eval.jsonl")
    diff_var = (base["diff_sd"] or 0) ** 2
    return {
        "metric": METRIC,
        "half_width": HALF_WIDTH,
        "cells": cells,
        "eval": ev,
        "shared": {
            "paired_sd": base["diff_sd"],
            "independent_sd": math.sqrt(var_l + var_d) if base["listmle_sd"] and base["dpo_sd"] else None,
        },
        "eval_share_of_diff_variance": ev["diff"] ** 2 / diff_var if ev.get("diff") is not None and diff_var else None,
        "failed": sweep.failed,
    }


def markdown(s: dict) -> str:
    c, ev = s["cells"], s["eval"]
    lines = [
        "# smollm2_variance: where the variance comes from",
        "",
        f"Metric: test {s['metric']} (200 problems, 2 samples each). d = ListMLE - DPO, paired by seed.",
        "",
        "## Sources (base cell)",
        "",
        "| quantity | ListMLE | DPO | d |",
        "|---|---|---|---|",
        f"| SD over training seeds (eval.seed fixed) | {fmt(c['base']['listmle_sd'])} | {fmt(c['base']['dpo_sd'])} "
        f"| {fmt(c['base']['diff_sd'])} |",
        f"| SD the evaluation's sampling alone adds ({ev['policies']} policies re-evaluated) "
        f"| {fmt(ev.get(LISTMLE))} | {fmt(ev.get(DPO))} | {fmt(ev.get('diff'))} |",
        "",
        f"Shared lists: d's SD paired by seed {fmt(s['shared']['paired_sd'])}; between independent runs "
        f"sqrt(var L + var D) {fmt(s['shared']['independent_sd'])}.",
        f"The evaluation's share of d's variance: {fmt(s['eval_share_of_diff_variance'], 2)}.",
        "",
        f"## Levers (seeds for a 95% half-width of {s['half_width']} on d)",
        "",
        "| cell | seeds | ListMLE | DPO | d mean | d SD | seeds needed | s per seed | compute (h) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in c.items():
        lines.append(
            f"| {name} | {len(x['seeds'])} | {fmt(x['listmle_mean'])} | {fmt(x['dpo_mean'])} | {fmt(x['diff_mean'])} "
            f"| {fmt(x['diff_sd'])} | {x.get('seeds_needed', 'n/a')} | {fmt(x['seconds_per_seed'], 0)} "
            f"| {fmt(x.get('compute_h'), 1)} |"
        )
    if s["failed"]:
        lines += ["", "Unfinished jobs: " + "; ".join(s["failed"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", default=Path("multirun/smollm2_variance"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    s = study(args.root)
    text = markdown(s)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(text)
        write_atomic(args.out / "variance.json", s)


if __name__ == "__main__":
    main()
