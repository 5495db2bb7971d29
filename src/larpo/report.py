"""`larpo-report <dir | runs.csv>`: results.md, results.png and runs.csv from a run or sweep.

It reads JSON, plain YAML text and CSV only (never a checkpoint, pickle or config with code in it),
so a run directory from someone else can be inspected safely. A setting is the overrides that
differ between jobs, the seed left out. Runs with the same seed share the SFT policy and the
prompts, so settings are compared *paired by seed*: for every setting and metric, the mean
difference to the baseline setting with its 95% confidence interval (paired Student t). Claims
(`report.claims` of the experiment file) get a verdict by the rule in the README, with Holm's
correction over the claims of one experiment. Given a `runs.csv` (e.g. a committed one), the report
and its figure are rebuilt from it alone: no sweep directory needed.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
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
PROPORTIONS = {
    "win_rate_vs_sft",
    "accuracy_greedy",
    "accuracy_sampled",
    "pass_at_1",
    "ndcg",
    "ranking_accuracy",
    "gold_reward",
}
ALPHA = 0.05  # two-sided level of every interval and test
MARGIN = 0.01  # |difference| below this is "no difference" for the verdicts (one point of win rate)


# --- Student t, without scipy -------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float, dof: int) -> float:
    """Two-sided p-value of Student's t with `dof` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_quantile(dof: int, level: float = 1 - ALPHA) -> float:
    """The two-sided `level` quantile of Student's t (bisection on the p-value)."""
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, dof) > 1 - level else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% confidence interval (None for a single value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, None
    return m, t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


@dataclass
class Paired:
    """Per-seed differences of a setting to the baseline on one metric."""

    mean: float
    half: float | None  # 95% CI half-width (None: one seed)
    n: int
    p: float | None  # two-sided paired t p-value (None: one seed)


def paired(a: dict[int, float], b: dict[int, float]) -> Paired | None:
    """The paired comparison of a to b over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = [a[s] - b[s] for s in seeds]
    m, h = mean_ci(d)
    if len(d) < 2:
        return Paired(m, None, len(d), None)
    sd = statistics.stdev(d)
    p = t_pvalue(m / (sd / math.sqrt(len(d))), len(d) - 1) if sd > 0 else (0.0 if m else 1.0)
    return Paired(m, h, len(d), p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over one experiment's claims)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def verdict(diff: Paired | None, p_adjusted: float | None) -> str:
    """The README's rule for a claim "A > B" on the paired differences A - B."""
    if diff is None or diff.p is None:
        return "inconclusive"
    if p_adjusted < ALPHA:
        return "reproduced" if diff.mean > 0 else "not reproduced"
    if diff.mean + diff.half < MARGIN and diff.mean - diff.half > -MARGIN:
        return "not reproduced"  # the interval rules out a gain of MARGIN or more: no effect
    return "inconclusive"


# --- collecting runs ----------------------------------------------------------------------------


@dataclass
class Run:
    setting: str
    seed: int
    final: dict[str, float]
    sft: dict[str, float]
    wall: float | None
    experiment: str = ""
    history: list[dict] = field(default_factory=list)  # per-iteration metrics, iteration 0 first


@dataclass
class Sweep:
    """Runs grouped by setting (in launch order), the baseline, failed jobs and duplicates."""

    runs: list[Run]
    failed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    name: str = ""

    @property
    def settings(self) -> list[str]:
        return list(dict.fromkeys(r.setting for r in self.runs))

    def by_seed(self, setting: str, metric: str) -> dict[int, float]:
        return {r.seed: r.final[metric] for r in self.runs if r.setting == setting and metric in r.final}

    def sft_by_seed(self, metric: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for r in self.runs:
            if metric in r.sft:
                out.setdefault(r.seed, r.sft[metric])
        return out

    @property
    def baseline(self) -> str:
        wanted = self.report.get("baseline")
        if wanted:
            match = [s for s in self.settings if s == wanted or wanted in s.split()]
            if match:
                return match[0]
        return self.settings[0] if self.settings else ""

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})


def job_overrides(job_dir: Path) -> list[str]:
    """The command-line overrides of a Hydra job, read as plain YAML text (no code is executed)."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [line[2:].strip().strip("'\"") for line in path.read_text().splitlines() if line.startswith("- ")]


def _job_order(path: Path) -> tuple:
    """Sweep jobs in launch order (numbered directories sort as numbers)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def _dedupe(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Count each (setting, seed) once: the first finished run; name the others."""
    seen, out, dupes = set(), [], []
    for r in runs:
        if (r.setting, r.seed) in seen:
            dupes.append(f"{r.setting or '(every job)'} seed={r.seed}")
            continue
        seen.add((r.setting, r.seed))
        out.append(r)
    return out, dupes


def collect(root: Path) -> Sweep:
    """A setting is the overrides that differ between finished jobs, the seed left out."""
    job_dirs = sorted(
        {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")} | {p.parent for p in root.rglob("summary.json")},
        key=_job_order,
    )
    overrides = {job: [o for o in job_overrides(job) if not o.startswith("seed=")] for job in job_dirs}
    finished = [set(o) for job, o in overrides.items() if (job / "summary.json").is_file()]
    common = set.intersection(*finished) if len(finished) > 1 else set()
    sweep, runs = Sweep([]), []
    for job in job_dirs:
        setting = " ".join(o for o in overrides[job] if o not in common)
        summary = job / "summary.json"
        label = job.relative_to(root) if job != root else job.name
        if not summary.is_file():
            sweep.failed.append(f"{label}: {setting or '(every job)'}")
            continue
        try:
            data = json.loads(summary.read_text())
        except (json.JSONDecodeError, OSError) as err:
            sweep.failed.append(f"{label}: {setting} (unreadable summary.json: {err})")
            continue
        config = data.get("config", {})
        history = data.get("history") or []
        sft = history[0] if history and history[0].get("iteration") == 0 else {}
        runs.append(
            Run(
                setting,
                int(config.get("seed", 0)),
                {k: v for k, v in data.get("final", {}).items() if isinstance(v, int | float)},
                {k: v for k, v in sft.items() if isinstance(v, int | float) and k != "iteration"},
                (data.get("timing") or {}).get("total"),
                config.get("experiment_name") or "",
                [{k: v for k, v in h.items() if isinstance(v, int | float)} for h in history],
            )
        )
        sweep.report = sweep.report or dict(config.get("report") or {})
        sweep.name = sweep.name or (config.get("experiment_name") or "")
    sweep.runs, sweep.duplicates = _dedupe(runs)
    return sweep


def write_runs_csv(sweep: Sweep, path: Path) -> None:
    """One row per run: experiment, setting, seed, wall time, every final metric, the SFT metrics."""
    finals = sorted({k for r in sweep.runs for k in r.final}, key=_metric_order)
    sfts = sorted({k for r in sweep.runs for k in r.sft}, key=_metric_order)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "setting", "seed", "wall_time_s", *finals, *[f"sft_{k}" for k in sfts]])
        for r in sweep.runs:
            w.writerow(
                [sweep.name, r.setting, r.seed, "" if r.wall is None else round(r.wall, 1)]
                + [_cell(r.final.get(k)) for k in finals]
                + [_cell(r.sft.get(k)) for k in sfts]
            )


HISTORY = ["accuracy_greedy", "accuracy_sampled", "win_rate_vs_sft"]


def write_history_csv(sweep: Sweep, path: Path) -> bool:
    """Per-iteration metrics of every run (when runs were evaluated after each iteration)."""
    rows = [(r, h) for r in sweep.runs for h in r.history]
    if not any(len(r.history) > 2 for r in sweep.runs):
        return False
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "setting", "seed", "iteration", *HISTORY])
        for r, h in rows:
            w.writerow([sweep.name, r.setting, r.seed, int(h["iteration"]), *[_cell(h.get(m)) for m in HISTORY]])
    return True


def read_history_csv(path: Path, sweep: Sweep) -> None:
    if not path.is_file():
        return
    runs = {(r.setting, r.seed): r for r in sweep.runs}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            run = runs.get((row["setting"], int(row["seed"])))
            if run is not None:
                run.history.append(
                    {"iteration": int(row["iteration"]), **{m: float(row[m]) for m in HISTORY if row[m]}}
                )


def history_figure(sweep: Sweep, out: Path) -> Path | None:
    """history.png: greedy and sampled accuracy (and win rate) per iteration, mean over seeds."""
    if not any(len(r.history) > 2 for r in sweep.runs):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(HISTORY), figsize=(5.2 * len(HISTORY), 4.4), squeeze=False)
    for ax, metric in zip(axes[0], HISTORY):
        for setting in sweep.settings:
            by_iteration: dict[int, list[float]] = {}
            for r in sweep.runs:
                if r.setting == setting:
                    for h in r.history:
                        if metric in h:
                            by_iteration.setdefault(int(h["iteration"]), []).append(h[metric])
            its = sorted(by_iteration)
            ax.plot(its, [statistics.fmean(by_iteration[i]) for i in its], marker="o", label=setting or "runs")
        ax.set_xticks(sorted({int(h["iteration"]) for r in sweep.runs for h in r.history}))
        ax.set_title(metric)
        ax.set_xlabel("iteration (0: SFT policy)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{sweep.name}: per iteration, mean over {len(sweep.seeds)} seed(s)")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _cell(x) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(x)


def _metric_order(name: str):
    return (METRICS.index(name) if name in METRICS else len(METRICS), name)


def read_runs_csv(path: Path) -> Sweep:
    """A sweep from a runs.csv alone; its report config from the report.json beside it, else from
    the shipped experiment file of that name."""
    runs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            numbers = {k: float(v) for k, v in row.items() if k not in ("experiment", "setting", "seed") and v}
            runs.append(
                Run(
                    row["setting"],
                    int(row["seed"]),
                    {k: v for k, v in numbers.items() if not k.startswith("sft_") and k != "wall_time_s"},
                    {k[4:]: v for k, v in numbers.items() if k.startswith("sft_")},
                    numbers.get("wall_time_s"),
                    row["experiment"],
                )
            )
    name = runs[0].experiment if runs else ""
    unique, duplicates = _dedupe(runs)
    saved = path.with_name("report.json")  # the sweep's report config, written beside runs.csv
    report = json.loads(saved.read_text()) if saved.is_file() else experiment_report_config(name)
    sweep = Sweep(unique, duplicates=duplicates, report=report, name=name)
    read_history_csv(path.with_name("history.csv"), sweep)
    return sweep


def experiment_report_config(name: str) -> dict:
    """The `report` node of a shipped experiment file, composed with Hydra (plain YAML, no code)."""
    if not name:
        return {}
    from omegaconf import OmegaConf

    from larpo.config import compose

    try:
        cfg = compose([f"experiment={name}", "run_dir=."])
    except Exception:  # a user's experiment that is not on this search path: default drawing
        return {}
    return OmegaConf.to_container(cfg.report, resolve=True)


def tune(sweep: Sweep) -> list[dict]:
    """`report.tune: <key>` (e.g. lr): for every setting of the other overrides, keep only the runs
    of the value of <key> with the best mean `report.tune_by` (a validation-split metric) over
    seeds, relabelled without <key>. Everything after (tables, claims, figure) sees those runs, whose
    test metrics the choice never saw. Returns one row per setting: the scores and the choice."""
    key = sweep.report.get("tune")
    if not key:
        return []
    by = sweep.report.get("tune_by") or "val_win_rate_vs_sft"
    groups: dict[str, dict[str, list[Run]]] = {}
    for r in sweep.runs:
        parts = parse_setting(r.setting)
        value = parts.pop(key, None)
        label = " ".join(f"{k}={v}" for k, v in parts.items())
        groups.setdefault(label, {}).setdefault(value, []).append(r)
    rows, kept = [], []
    for label, by_value in groups.items():
        scores = {v: [r.final[by] for r in runs if by in r.final] for v, runs in by_value.items()}
        scored = {v: x for v, x in scores.items() if x}
        if not scored:  # no validation metric: nothing to choose on
            continue
        best = max(scored, key=lambda v: statistics.fmean(scored[v]))
        rows.append({"setting": label, "scores": scores, "chosen": best})
        kept += [dataclasses.replace(r, setting=label) for r in by_value[best]]
    sweep.runs = kept
    return rows


def tuning_table(rows: list[dict], key: str, by: str) -> str:
    values = list(dict.fromkeys(v for row in rows for v in row["scores"]))
    if all(_number(str(v)) is not None for v in values):  # e.g. learning rates: in increasing order
        values.sort(key=lambda v: _number(str(v)))
    lines = [
        f"| setting | {' | '.join(f'{key}={v}' for v in values)} | chosen |",
        "|---|" + "---|" * (len(values) + 1),
    ]
    for row in rows:
        cells = [cell(row["scores"].get(v) or []) for v in values]
        lines.append(f"| {row['setting']} | {' | '.join(cells)} | {key}={row['chosen']} |")
    return f"Mean {by} ± 95% CI over seeds, per value of {key}:\n\n" + "\n".join(lines)


# --- the report ---------------------------------------------------------------------------------


def _fmt(m: float, h: float | None) -> str:
    return f"{m:.3f}" if h is None else f"{m:.3f} ± {h:.3f}"


def cell(values: list[float]) -> str:
    return "n/a" if not values else _fmt(*mean_ci(values))


def table(sweep: Sweep, metrics: list[str]) -> str:
    lines = ["| setting | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    sft_seeds = {s for m in metrics for s in sweep.sft_by_seed(m)}
    if sft_seeds:
        cells = [cell(list(sweep.sft_by_seed(m).values())) for m in metrics]
        lines.append(f"| SFT (iteration 0) | {len(sft_seeds)} | " + " | ".join(cells) + " |")
    for s in sweep.settings:
        cells = [cell(list(sweep.by_seed(s, m).values())) for m in metrics]
        n = len({r.seed for r in sweep.runs if r.setting == s})
        lines.append(f"| {s or '(every job)'} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(sweep: Sweep, metrics: list[str]) -> str:
    base = sweep.baseline
    lines = [
        f"| setting − {base} | seeds | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for s in sweep.settings:
        if s == base:
            continue
        diffs = [paired(sweep.by_seed(s, m), sweep.by_seed(base, m)) for m in metrics]
        n = max((d.n for d in diffs if d), default=0)
        cells = ["n/a" if d is None else _fmt(d.mean, d.half) for d in diffs]
        lines.append(f"| {s} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CLAIM = re.compile(r"^\s*(.+?)\s*>\s*(.+?)\s*$")


def _resolve(sweep: Sweep, name: str) -> str | None:
    """A claim names a setting by its full label or one of its overrides; SFT is the start policy."""
    if name == "SFT":
        return "SFT"
    return next((s for s in sweep.settings if s == name or name in s.split()), None)


def claims(sweep: Sweep, metric: str) -> list[dict]:
    """Each claim "A > B": the paired difference, the Holm-adjusted p-value and the verdict."""
    out = []
    for text in sweep.report.get("claims") or []:
        m = CLAIM.match(text)
        if not m:
            continue
        a, b = (_resolve(sweep, x) for x in m.groups())
        if a is None or b is None:
            out.append({"claim": text, "diff": None})
            continue
        values = {x: (sweep.sft_by_seed(metric) if x == "SFT" else sweep.by_seed(x, metric)) for x in (a, b)}
        out.append({"claim": text, "diff": paired(values[a], values[b])})
    tested = [c for c in out if c["diff"] is not None and c["diff"].p is not None]
    for c, p in zip(tested, holm([c["diff"].p for c in tested])):
        c["p_holm"] = p
    for c in out:
        c["verdict"] = verdict(c["diff"], c.get("p_holm"))
    return out


def claims_table(rows: list[dict], metric: str) -> str:
    lines = [
        f"| claim | paired difference in {metric} (95% CI) | seeds | p (paired t) | p (Holm) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in rows:
        d = c["diff"]
        if d is None:
            lines.append(f"| {c['claim']} | n/a (setting not in this sweep) | 0 | | | inconclusive |")
            continue
        p = "" if d.p is None else f"{d.p:.3g}"
        ph = "" if c.get("p_holm") is None else f"{c['p_holm']:.3g}"
        lines.append(f"| {c['claim']} | {_fmt(d.mean, d.half)} | {d.n} | {p} | {ph} | **{c['verdict']}** |")
    return "\n".join(lines)


def write_report(source: Path, out: Path | None = None) -> Path:
    """Write results.md, results.png and runs.csv for a sweep directory or a runs.csv."""
    from_csv = source.is_file() and source.suffix == ".csv"
    sweep = read_runs_csv(source) if from_csv else collect(source)
    out = out or (source.parent if from_csv else source) / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs_csv = out.with_name("runs.csv")
    if not from_csv or runs_csv.resolve() != source.resolve():
        write_runs_csv(sweep, runs_csv)
        write_history_csv(sweep, runs_csv.with_name("history.csv"))
        runs_csv.with_name("report.json").write_text(json.dumps(sweep.report, indent=2, allow_nan=False) + "\n")
    tuned = tune(sweep)
    png = figure(sweep, out.with_suffix(".png"))
    name = sweep.name or source.stem
    metric = sweep.report.get("metric") or "win_rate_vs_sft"
    parts = [
        f"# Results: {name}",
        "",
        f"Final metrics on the held-out prompts, judged by the gold judge; {len(sweep.seeds)} seed(s) "
        f"({', '.join(map(str, sweep.seeds))}). Mean ± 95% confidence interval (Student t) over seeds; "
        "one seed shows no interval. The SFT row is each seed's starting policy.",
        "",
    ]
    if tuned:
        key, by = sweep.report["tune"], sweep.report.get("tune_by") or "val_win_rate_vs_sft"
        parts += [
            f"## {key} chosen per setting on the validation split",
            "",
            f"Each setting's {key} is the one with the best mean {by} (validation prompts, disjoint from",
            "the test prompts). Every table, claim and figure below shows the runs of that choice, on the",
            "test prompts. runs.csv holds every run.",
            "",
            tuning_table(tuned, key, by),
            "",
            "## Test metrics of the chosen runs",
            "",
        ]
    parts += [table(sweep, METRICS) if sweep.runs else "No finished job found.", ""]
    if len(sweep.settings) > 1:
        parts += [
            f"## Paired differences to the baseline ({sweep.baseline})",
            "",
            "Per seed, setting minus baseline (same SFT policy, prompts and evaluation prompts), then mean",
            "± 95% CI of the differences (paired t).",
            "",
            paired_table(sweep, METRICS),
            "",
        ]
    rows = claims(sweep, metric)
    if rows:
        parts += [
            "## Claims",
            "",
            f"Rule (README): on the paired differences in {metric}, Holm-adjusted over this experiment's",
            f"claims: **reproduced** if p < {ALPHA} and the difference is positive; **not reproduced** if",
            f"p < {ALPHA} and it is negative, or the 95% CI lies inside ±{MARGIN}; else **inconclusive**.",
            "",
            claims_table(rows, metric),
            "",
        ]
    if png:
        parts += [f"![{name}]({png.name})", ""]
    per_iteration = history_figure(sweep, out.with_name("history.png"))
    if per_iteration:
        parts += ["## Per iteration", "", f"![{name} per iteration]({per_iteration.name})", ""]
    if sweep.duplicates:
        parts += [
            "## Duplicate runs (counted once: the first)",
            "",
            *[f"- {d}" for d in sweep.duplicates],
            "",
        ]
    if sweep.failed:
        parts += ["## Missing or failed jobs", "", *[f"- {f}" for f in sweep.failed], ""]
    out.write_text("\n".join(parts))
    return out


# --- the figure ---------------------------------------------------------------------------------


def parse_setting(setting: str) -> dict[str, str]:
    """`objective=listmle reward_model=judge` -> {"objective": "listmle", "reward_model": "judge"}."""
    return dict(part.split("=", 1) for part in setting.split() if "=" in part)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def series(sweep: Sweep, metric: str) -> dict[str, list[tuple[str, float, float | None]]]:
    """{series label: [(x label, mean, ci)]}. The x axis is `report.x` (or the first override);
    the other overrides name the series."""
    x, order = sweep.report.get("x"), sweep.report.get("order")
    points: dict[str, list] = {}
    for setting in sweep.settings:
        values = list(sweep.by_seed(setting, metric).values())
        if not values:
            continue
        parts = parse_setting(setting)
        key = x if x in parts else next(iter(parts), None)
        xval = parts.pop(key, setting) if key else (setting or "all runs")
        label = " ".join(f"{k}={v}" for k, v in parts.items()) or (f"{key} (x axis)" if key else "runs")
        points.setdefault(label, []).append((xval, *mean_ci(values)))
    rank = {str(v): i for i, v in enumerate(order or [])}
    for pts in points.values():
        if rank:
            pts.sort(key=lambda p: rank.get(p[0], len(rank)))
        elif all(_number(p[0]) is not None for p in pts):
            pts.sort(key=lambda p: _number(p[0]))
    return points


def figure(sweep: Sweep, out: Path) -> Path | None:
    """results.png: one panel per plotted metric that has values; points with 95% error bars
    (no truncated bars), proportions' intervals clipped to [0, 1], the SFT level as a line."""
    panels = [m for m in PLOTTED if any(sweep.by_seed(s, m) for s in sweep.settings)]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    line = sweep.report.get("figure") == "line"
    n_x = max(len(p) for p in series(sweep, panels[0]).values())
    width = max(4.5, min(9.0, 0.55 * n_x + 2))
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 4.6), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        points = series(sweep, metric)
        offsets = [(i - (len(points) - 1) / 2) * 0.12 for i in range(len(points))]
        ticks: list[str] = []
        for (label, pts), dx in zip(points.items(), offsets):
            for xval, _, _ in pts:
                if xval not in ticks:
                    ticks.append(xval)
            pos = [ticks.index(p[0]) + dx for p in pts]
            means = [p[1] for p in pts]
            lo = [p[1] - (p[2] or 0.0) for p in pts]
            hi = [p[1] + (p[2] or 0.0) for p in pts]
            if metric in PROPORTIONS:
                lo, hi = [max(0.0, v) for v in lo], [min(1.0, v) for v in hi]
            yerr = [[m - a for m, a in zip(means, lo)], [b - m for m, b in zip(means, hi)]]
            ax.errorbar(pos, means, yerr=yerr, marker="o", capsize=4, linestyle="-" if line else "none", label=label)
        sft = list(sweep.sft_by_seed(metric).values())
        if sft:
            ax.axhline(statistics.fmean(sft), color="grey", linestyle="--", linewidth=1, label="SFT policy")
        ax.set_xticks(range(len(ticks)), ticks, rotation=25 if not line else 0, ha="right" if not line else "center")
        lows = [v for pts in points.values() for p in pts for v in (p[1] - (p[2] or 0),)] + sft
        highs = [v for pts in points.values() for p in pts for v in (p[1] + (p[2] or 0),)] + sft
        pad = max(0.02, 0.1 * (max(highs) - min(lows)))
        low, high = min(lows) - pad, max(highs) + pad
        if metric in PROPORTIONS:
            low, high = max(0.0, low), min(1.0, high)
        ax.set_ylim(low, high)
        ax.set_title(metric)
        ax.set_xlabel(sweep.report.get("x") or "setting")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    n = len(sweep.seeds)
    fig.suptitle(f"{sweep.name or out.parent.name}: mean" + (f" and 95% CI over {n} seeds" if n > 1 else " (1 seed)"))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="larpo-report", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run or multirun sweep directory, or a runs.csv to rebuild from")
    parser.add_argument("--out", type=Path, default=None, help="where to write results.md (default: beside the source)")
    args = parser.parse_args()
    if not (args.source.is_dir() or (args.source.is_file() and args.source.suffix == ".csv")):
        parser.error(f"{args.source} is neither a directory nor a runs.csv")
    path = write_report(args.source, args.out)
    print(path.read_text())


if __name__ == "__main__":
    main()
