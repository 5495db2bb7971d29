"""`larpo-report <dir>`: results.md and PNG figures from the `summary.json` files of a run or sweep.

It reads JSON and plain YAML text only (never a checkpoint, pickle or config with code in it), so
a run directory from someone else can be inspected safely. Settings are grouped by the overrides
that differ between jobs, seeds are averaged: mean, 95% confidence interval (Student t) and the
seed count. Jobs that started but wrote no summary are listed as failed. The figure follows the
sweep's `report` config (set by experiment files): bars per setting, or lines against `report.x`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

PLOTTED = ["win_rate_vs_sft", "accuracy_sampled", "accuracy_greedy"]
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


def _job_order(path: Path) -> tuple:
    """Sweep jobs in launch order (numbered directories sort as numbers)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


@dataclass
class Sweep:
    """Summaries grouped by setting (in launch order), failed jobs, and the sweep's report config."""

    groups: dict[str, list[dict]]
    failed: list[str]
    report: dict = field(default_factory=dict)
    name: str = ""


def collect(root: Path) -> Sweep:
    """A setting is the overrides that differ between jobs, the seed left out: the seeds of one
    setting are averaged."""
    job_dirs = sorted(
        {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
        | {p.parent for p in root.rglob("summary.json")},
        key=_job_order,
    )
    overrides = {job: [o for o in job_overrides(job) if not o.startswith("seed=")] for job in job_dirs}
    finished = [set(o) for job, o in overrides.items() if (job / "summary.json").is_file()]
    common = set.intersection(*finished) if len(finished) > 1 else set()
    groups: dict[str, list[dict]] = {}
    failed, sweep = [], Sweep({}, [])
    for job in job_dirs:
        setting = " ".join(o for o in overrides[job] if o not in common) or "(every job)"
        summary = job / "summary.json"
        if not summary.is_file():
            failed.append(f"{job.relative_to(root) if job != root else job.name}: {setting}")
            continue
        try:
            data = json.loads(summary.read_text())
        except (json.JSONDecodeError, OSError) as err:
            failed.append(f"{job.name}: {setting} (unreadable summary.json: {err})")
            continue
        groups.setdefault(setting, []).append(data)
        config = data.get("config", {})
        sweep.report = sweep.report or dict(config.get("report") or {})
        sweep.name = sweep.name or (config.get("experiment_name") or "")
    sweep.groups, sweep.failed = groups, failed
    return sweep


def cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    m, h = mean_ci(values)
    return f"{m:.3f} ± {h:.3f}"


def sft_metrics(groups: dict[str, list[dict]]) -> dict:
    """Each seed's SFT policy metrics: iteration 0 of the first run with that seed."""
    by_seed = {}
    for runs in groups.values():
        for r in runs:
            history = r.get("history") or []
            if history and history[0].get("iteration") == 0:
                by_seed.setdefault(r.get("config", {}).get("seed"), history[0])
    return by_seed


def sft_row(groups: dict[str, list[dict]], metrics: list[str]) -> str | None:
    """The SFT policy (iteration 0 of every run, one per seed) as the first row."""
    by_seed = sft_metrics(groups)
    if not by_seed:
        return None
    cells = [cell([h[m] for h in by_seed.values() if m in h]) for m in metrics]
    return f"| SFT (iteration 0) | {len(by_seed)} | " + " | ".join(cells) + " |"


def table(groups: dict[str, list[dict]], metrics: list[str]) -> str:
    lines = ["| setting | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    sft = sft_row(groups, metrics)
    if sft:
        lines.append(sft)
    for setting, runs in groups.items():
        cells = [cell([r["final"][m] for r in runs if m in r.get("final", {})]) for m in metrics]
        lines.append(f"| {setting} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_setting(setting: str) -> dict[str, str]:
    """`objective=listmle reward_model=judge` -> {"objective": "listmle", "reward_model": "judge"}."""
    return dict(part.split("=", 1) for part in setting.split() if "=" in part)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def series(groups: dict[str, list[dict]], x: str | None, order: list | None):
    """Plot data: {series label: [(x label, {metric: (mean, ci)})]}. The x axis is the override
    `x` (or the first varying override); the other overrides name the series."""
    points: dict[str, list] = {}
    for setting, runs in groups.items():
        parts = parse_setting(setting)
        key = x if x in parts else next(iter(parts), None)
        xval = parts.pop(key, setting) if key else setting
        label = " ".join(f"{k}={v}" for k, v in parts.items()) or "larpo"
        stats = {
            m: mean_ci([r["final"][m] for r in runs]) for m in PLOTTED if all(m in r["final"] for r in runs)
        }
        points.setdefault(label, []).append((xval, stats))
    rank = {str(v): i for i, v in enumerate(order or [])}
    for pts in points.values():
        if all(_number(p[0]) is not None for p in pts) and not rank:
            pts.sort(key=lambda p: _number(p[0]))
        elif rank:
            pts.sort(key=lambda p: rank.get(p[0], len(rank)))
    return points


def sft_level(groups: dict[str, list[dict]], metric: str) -> float | None:
    """The SFT policy's mean `metric` over seeds (iteration 0 of each run)."""
    values = [h[metric] for h in sft_metrics(groups).values() if metric in h]
    return statistics.fmean(values) if values else None


def figure(sweep: Sweep, out: Path) -> Path | None:
    """results.png: one panel per plotted metric, bars per setting or lines against report.x."""
    if not sweep.groups:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    kind, x = sweep.report.get("figure", "bar"), sweep.report.get("x")
    points = series(sweep.groups, x, sweep.report.get("order"))
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(5 * len(PLOTTED), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], PLOTTED):
        width = 0.8 / max(1, len(points))
        for s, (label, pts) in enumerate(points.items()):
            xs = [p[0] for p in pts]
            means = [p[1].get(metric, (math.nan, 0))[0] for p in pts]
            cis = [p[1].get(metric, (math.nan, 0))[1] for p in pts]
            if kind == "line":
                numeric = all(_number(v) is not None for v in xs)
                pos = [_number(v) for v in xs] if numeric else list(range(len(xs)))
                ax.errorbar(pos, means, yerr=cis, marker="o", capsize=4, label=label)
                if not numeric:
                    ax.set_xticks(pos, xs)
            else:
                pos = [i + (s - (len(points) - 1) / 2) * width for i in range(len(xs))]
                ax.bar(pos, means, width=width, yerr=cis, capsize=3, label=label)
                ax.set_xticks(range(len(xs)), xs, rotation=25, ha="right")
        sft = sft_level(sweep.groups, metric)
        if sft is not None:  # the starting point every setting is compared with
            ax.axhline(sft, color="grey", linestyle="--", linewidth=1, label="SFT")
        if kind != "line":  # bars of close values: zoom to them, the axis says where it starts
            stats = [p[1][metric] for pts in points.values() for p in pts if metric in p[1]]
            lo = min([m - h for m, h in stats] + ([sft] if sft is not None else []), default=0.0)
            hi = max([m + h for m, h in stats], default=1.0)
            pad = max(hi - lo, 1e-3)
            ax.set_ylim(max(0.0, lo - 0.15 * pad), hi + 0.1 * pad)
        ax.set_title(metric)
        ax.set_xlabel(x or "setting")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{sweep.name or out.parent.name}: mean and 95% CI over seeds")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(root: Path, out: Path | None = None) -> Path:
    sweep = collect(root)
    out = out or root / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    png = figure(sweep, out.with_suffix(".png"))
    parts = [
        f"# Results: {sweep.name or root.name}",
        "",
        "Final metrics on the held-out prompts, judged by the gold judge: mean ± 95% confidence",
        "interval over seeds (Student t). The SFT row is each seed's starting policy.",
        "",
        table(sweep.groups, METRICS) if sweep.groups else "No finished job found.",
        "",
    ]
    if png:
        parts += [f"![{sweep.name or root.name}]({png.name})", ""]
    if sweep.failed:
        parts += ["## Missing or failed jobs", "", *[f"- {f}" for f in sweep.failed], ""]
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
