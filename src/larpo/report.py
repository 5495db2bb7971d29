"""`larpo-report <dir>`: a results table from the `summary.json` files of a run or a sweep.

It reads JSON only (never a checkpoint, pickle or config with code in it), so a run directory
from someone else can be inspected safely. Settings are grouped by the overrides that differ
between jobs, seeds are averaged: mean, 95% confidence interval (Student t) and the seed count.
Jobs that started but wrote no summary are listed as failed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

METRICS = [
    "win_rate_vs_sft",
    "gold_reward",
    "accuracy_greedy",
    "accuracy_sampled",
    "pass_at_1",
    "ndcg",
    "ranking_accuracy",
]
# two-sided 95% Student t quantiles by degrees of freedom; 1.96 beyond the table
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}


def t95(dof: int) -> float:
    """The t quantile for `dof`, rounded towards the next smaller tabulated dof (conservative)."""
    return _T95[max(k for k in _T95 if k <= dof)] if dof <= 30 else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (0 for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, 0.0
    return m, t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def job_overrides(job_dir: Path) -> list[str]:
    """The command-line overrides of a Hydra job, read as plain YAML text (no code is executed)."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("- ")]


def collect(root: Path) -> tuple[dict[str, list[dict]], list[str]]:
    """Summaries grouped by setting, and the jobs that failed. A setting is the overrides that
    differ between jobs, the seed left out: the seeds of one setting are averaged."""
    job_dirs = sorted(
        {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
        | {p.parent for p in root.rglob("summary.json")}
    )
    overrides = {job: [o for o in job_overrides(job) if not o.startswith("seed=")] for job in job_dirs}
    finished = [set(o) for job, o in overrides.items() if (job / "summary.json").is_file()]
    common = set.intersection(*finished) if len(finished) > 1 else set()
    groups: dict[str, list[dict]] = defaultdict(list)
    failed = []
    for job in job_dirs:
        setting = " ".join(o for o in overrides[job] if o not in common) or "(every job)"
        summary = job / "summary.json"
        if not summary.is_file():
            failed.append(f"{job.relative_to(root) if job != root else job.name}: {setting}")
            continue
        try:
            groups[setting].append(json.loads(summary.read_text()))
        except (json.JSONDecodeError, OSError) as err:
            failed.append(f"{job.name}: {setting} (unreadable summary.json: {err})")
    return groups, failed


def table(groups: dict[str, list[dict]], metrics: list[str]) -> str:
    lines = ["| setting | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for setting, runs in sorted(groups.items()):
        cells = []
        for name in metrics:
            values = [r["final"][name] for r in runs if name in r.get("final", {})]
            if values:
                m, h = mean_ci(values)
                cells.append(f"{m:.3f} ± {h:.3f}")
            else:
                cells.append("n/a")
        lines.append(f"| {setting} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(root: Path, out: Path | None = None) -> Path:
    groups, failed = collect(root)
    out = out or root / "results.md"
    parts = [
        f"# Results: {root.name}",
        "",
        "Final metrics, mean ± 95% confidence interval over seeds (Student t).",
        "",
        table(groups, METRICS) if groups else "No finished job found.",
        "",
    ]
    if failed:
        parts += ["## Missing or failed jobs", "", *[f"- {f}" for f in failed], ""]
    out.write_text("\n".join(parts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="larpo-report", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a run directory or a multirun sweep directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: <dir>/results.md)")
    args = parser.parse_args()
    if not args.directory.is_dir():
        parser.error(f"{args.directory} is not a directory")
    path = write_report(args.directory, args.out)
    print(path.read_text())


if __name__ == "__main__":
    main()
