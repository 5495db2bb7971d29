"""Collecting runs: the finished jobs of a sweep directory (or a committed runs.csv) as a `Sweep`
of `RunResult`s grouped by setting; runs.csv and history.csv; the experiment's `report` node;
`report.tune`'s choice per setting on the validation split."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

# the final metrics a report tabulates, in this order; every one is a share in [0, 1]
METRICS = [
    "win_rate_vs_sft",
    "gold_reward",
    "accuracy_greedy",
    "accuracy_sampled",
    "pass_at_1",
    "ndcg",
    "ranking_accuracy",
]
# the exact evaluation's metrics (embedded worlds) and the mean reward of wrong samples, tabulated
# where the runs have them
EXACT = [
    "exact_win_rate_vs_sft",
    "exact_gold_reward",
    "exact_accuracy",
    "exact_mode_correct",
    "exact_mass_outside",
    "wrong_reward",
]


@dataclass
class RunResult:
    setting: str
    seed: int
    final: dict[str, float]
    sft: dict[str, float]
    wall: float | None
    experiment: str = ""
    history: list[dict] = field(default_factory=list)  # per-iteration metrics, iteration 0 first
    reused_from: str = ""  # the run whose results this job reused (run/jobs.py), if any


@dataclass
class Sweep:
    """Runs grouped by setting (in launch order), the baseline, failed jobs and duplicates."""

    runs: list[RunResult]
    failed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    name: str = ""
    machines: dict[str, int] = field(default_factory=dict)  # execution overrides -> finished jobs, if several

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
            match = [s for s in self.settings if s == wanted or set(wanted.split()) <= set(s.split())]
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


def _dedupe(runs: list[RunResult]) -> tuple[list[RunResult], list[str]]:
    """Count each (setting, seed) once: the first finished run; name the others."""
    seen, out, dupes = set(), [], []
    for r in runs:
        if (r.setting, r.seed) in seen:
            dupes.append(f"{r.setting or '(every job)'} seed={r.seed}")
            continue
        seen.add((r.setting, r.seed))
        out.append(r)
    return out, dupes


def run_result(setting: str, data: dict) -> RunResult:
    """One finished job's numbers, from its summary: final and SFT metrics, history, wall time."""
    config = data.get("config", {})
    history = data.get("history") or []
    sft = history[0] if history and history[0].get("iteration") == 0 else {}
    return RunResult(
        setting,
        int(config.get("seed", 0)),
        {k: v for k, v in data.get("final", {}).items() if isinstance(v, int | float)},
        {k: v for k, v in sft.items() if isinstance(v, int | float) and k != "iteration"},
        (data.get("timing") or {}).get("total"),
        config.get("experiment_name") or "",
        [{k: v for k, v in h.items() if isinstance(v, int | float)} for h in history],
        str(data.get("reused_from") or ""),
    )


def collect(*roots: Path) -> Sweep:
    """A setting is the overrides that differ between finished jobs (of all `roots`, e.g. one sweep
    run in parts), the seed left out."""
    job_dirs = sorted(
        {p.parent.parent for root in roots for p in root.rglob(".hydra/overrides.yaml")}
        | {p.parent for root in roots for p in root.rglob("summary.json")},
        key=_job_order,
    )
    root = Path(os.path.commonpath(roots)) if roots else Path()
    overrides = {job: [o for o in job_overrides(job) if not o.startswith("seed=")] for job in job_dirs}
    done = [job for job in job_dirs if (job / "summary.json").is_file()]
    execution = {job: " ".join(o for o in overrides[job] if is_execution(o)) for job in job_dirs}
    science = {job: [o for o in overrides[job] if not is_execution(o)] for job in job_dirs}
    distinct = {(frozenset(science[job]), seed_of(job)) for job in done}
    if len({execution[job] for job in done}) > 1 and len(distinct) == len(done):
        # a sweep continued on another machine: how a job ran is not part of its setting, as long
        # as that merges no two runs of one seed
        overrides = science
        sweep_machines = {e: [execution[j] for j in done].count(e) for e in dict.fromkeys(execution[j] for j in done)}
    else:
        sweep_machines = {}
    finished = [set(overrides[job]) for job in done]
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
        except (ValueError, OSError) as err:  # not JSON, not UTF-8, not readable
            sweep.failed.append(f"{label}: {setting} (unreadable summary.json: {err})")
            continue
        config = data.get("config", {})
        runs.append(run_result(setting, data))
        sweep.report = sweep.report or dict(config.get("report") or {})
        sweep.name = sweep.name or (config.get("experiment_name") or "")
    sweep.runs, sweep.duplicates = _dedupe(runs)
    sweep.machines = sweep_machines
    return sweep


# Overrides that say where and how a job ran (device, precision, logger, launcher, threads), not
# what it computed.
EXECUTION = ("trainer", "logger", "progress", "threads", "hydra")


def is_execution(override: str) -> bool:
    return override.lstrip("+~").split("=", 1)[0].split(".")[0].split("/")[0] in EXECUTION


def seed_of(job_dir: Path) -> str:
    return next((o.split("=", 1)[1] for o in job_overrides(job_dir) if o.startswith("seed=")), "")


def write_runs_csv(sweep: Sweep, path: Path) -> None:
    """One row per run: experiment, setting, seed, wall time, every final metric, the SFT metrics."""
    finals = sorted({k for r in sweep.runs for k in r.final}, key=_metric_order)
    sfts = sorted({k for r in sweep.runs for k in r.sft}, key=_metric_order)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        reused = any(r.reused_from for r in sweep.runs)  # the column only where some row was reused
        w.writerow(
            ["experiment", "setting", "seed", "wall_time_s", *finals, *[f"sft_{k}" for k in sfts]]
            + (["reused_from"] if reused else [])
        )
        for r in sweep.runs:
            w.writerow(
                [sweep.name, r.setting, r.seed, "" if r.wall is None else round(r.wall, 1)]
                + [_cell(r.final.get(k)) for k in finals]
                + [_cell(r.sft.get(k)) for k in sfts]
                + ([r.reused_from] if reused else [])
            )


HISTORY = ["accuracy_greedy", "accuracy_sampled", "win_rate_vs_sft"]  # first, in this order
_HISTORY_LABELS = ("experiment", "setting", "seed", "iteration")


def write_history_csv(sweep: Sweep, path: Path) -> bool:
    """Per-iteration metrics of every run (each evaluated iteration, the start and the end at
    least): every metric, so that `report.tune: ... iteration` and the per-iteration figure can be
    rebuilt from the csv files alone."""
    rows = [(r, h) for r in sweep.runs for h in r.history]
    if not any(len(r.history) >= 2 for r in sweep.runs):
        return False
    names = sorted({k for _, h in rows for k in h if k != "iteration"}, key=_metric_order)
    names = [m for m in HISTORY if m in names] + [m for m in names if m not in HISTORY]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "setting", "seed", "iteration", *names])
        for r, h in rows:
            w.writerow([sweep.name, r.setting, r.seed, int(h["iteration"]), *[_cell(h.get(m)) for m in names]])
    return True


def read_history_csv(path: Path, sweep: Sweep) -> None:
    if not path.is_file():
        return
    runs = {(r.setting, r.seed): r for r in sweep.runs}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            run = runs.get((row["setting"], int(row["seed"])))
            if run is not None:
                metrics = {m: float(v) for m, v in row.items() if m not in _HISTORY_LABELS and v}
                run.history.append({"iteration": int(row["iteration"]), **metrics})


def _cell(x) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else repr(x)


def _metric_order(name: str):
    return (METRICS.index(name) if name in METRICS else len(METRICS), name)


def load(sources: list[Path]) -> Sweep:
    """One experiment's runs from several sources: sweep directories (collected together, so
    their settings are named alike) and runs.csv files (e.g. a committed one, and the jobs run
    since in a new directory). Each (setting, seed) counts once: the first source's."""
    dirs = [s for s in sources if s.is_dir()]
    parts = []
    for source in sources:
        if not source.is_dir():
            parts.append(read_runs_csv(source))
        elif source == dirs[0]:
            parts.append(collect(*dirs))
    if len(parts) == 1:
        return parts[0]
    runs, duplicates = _dedupe([r for part in parts for r in part.runs])
    return Sweep(
        runs,
        failed=[f for part in parts for f in part.failed],
        duplicates=[d for part in parts for d in part.duplicates] + duplicates,
        report=next((part.report for part in parts if part.report), {}),
        name=next((part.name for part in parts if part.name), ""),
        machines={e: n for part in parts for e, n in part.machines.items()},
    )


def read_runs_csv(path: Path) -> Sweep:
    """A sweep from a runs.csv alone; its report config from the report.json beside it, else from
    the shipped experiment file of that name."""
    runs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            text = ("experiment", "setting", "seed", "reused_from")
            numbers = {k: float(v) for k, v in row.items() if k not in text and v}
            runs.append(
                RunResult(
                    row["setting"],
                    int(row["seed"]),
                    {k: v for k, v in numbers.items() if not k.startswith("sft_") and k != "wall_time_s"},
                    {k[4:]: v for k, v in numbers.items() if k.startswith("sft_")},
                    numbers.get("wall_time_s"),
                    row["experiment"],
                    reused_from=row.get("reused_from") or "",
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

    from larpo.config.compose import compose

    try:
        cfg = compose([f"experiment={name}", "run_dir=."])
    except Exception:  # a user's experiment that is not on this search path: default drawing
        return {}
    return OmegaConf.to_container(cfg.report, resolve=True)


def tune(sweep: Sweep) -> list[dict]:
    """`report.tune: <keys>` (e.g. `lr`, or `lr beta iteration`): for every setting of the other
    overrides, keep only the runs of the combination of values of <keys> with the best mean
    `report.tune_by` (a validation-split metric) over seeds, relabelled without <keys>. `iteration`
    is the evaluation after that iteration (runs evaluated every iteration): each run counts once
    per iteration, its metrics those of that evaluation. Everything after (tables, claims, figure)
    sees the chosen runs, whose test metrics the choice never saw. Returns one row per setting: the
    scores per combination, the choice, and the keys whose chosen value is at an end of its grid."""
    keys = (sweep.report.get("tune") or "").split()
    if not keys:
        return []
    by = sweep.report.get("tune_by") or "val_win_rate_vs_sft"
    runs = per_iteration(sweep.runs) if "iteration" in keys else sweep.runs
    groups: dict[str, dict[str, list[RunResult]]] = {}
    for r in runs:
        parts = parse_setting(r.setting)
        chosen = {k: parts.pop(k, None) for k in keys}
        value = chosen[keys[0]] if len(keys) == 1 else " ".join(f"{k}={v}" for k, v in chosen.items())
        label = " ".join(f"{k}={v}" for k, v in parts.items())
        groups.setdefault(label, {}).setdefault(value, []).append(r)
    rows, kept = [], []
    for label, by_value in groups.items():
        scores = {v: [r.final[by] for r in runs if by in r.final] for v, runs in by_value.items()}
        scored = {v: x for v, x in scores.items() if x}
        if not scored:  # no validation metric: nothing to choose on
            continue
        best = max(scored, key=lambda v: statistics.fmean(scored[v]))
        rows.append({"setting": label, "scores": scores, "chosen": best, "edges": grid_edges(keys, scored, best)})
        kept += [dataclasses.replace(r, setting=label) for r in by_value[best]]
    sweep.runs = kept
    return rows


def per_iteration(runs: list[RunResult]) -> list[RunResult]:
    """Each run once per evaluated iteration (1, 2, ...), as the setting plus `iteration=<i>`. A
    run's `iterations=` override is left out of its setting: a longer run (a grid extended by more
    iterations) adds its later evaluations to the same setting, its first ones counted once."""
    out, seen = [], set()
    for r in runs:
        setting = " ".join(p for p in r.setting.split() if not p.startswith("iterations="))
        for h in r.history:
            i = int(h.get("iteration", 0))
            if i >= 1 and (setting, r.seed, i) not in seen:
                seen.add((setting, r.seed, i))
                metrics = {k: v for k, v in h.items() if k != "iteration"}
                out.append(dataclasses.replace(r, setting=f"{setting} iteration={i}".strip(), final=metrics))
    return out


def grid_edges(keys: list[str], scored: dict[str, list[float]], best: str) -> list[str]:
    """The numeric keys whose chosen value is the smallest or largest of two or more values tried
    (for `iteration`, the last): the grid does not bracket the choice and should be extended."""
    if len(keys) == 1:
        combos = [{keys[0]: v} for v in scored]
        chosen = {keys[0]: best}
    else:
        combos = [parse_setting(v) for v in scored]
        chosen = parse_setting(best)
    edges = []
    for k in keys:
        values = sorted({as_number(c[k]) for c in combos if as_number(str(c.get(k))) is not None})
        # iteration 1's lower neighbour is iteration 0, the SFT policy itself (scored on the same
        # split, win rate 0.5): only the last iteration evaluated is an end of that grid
        ends = values[-1:] if k == "iteration" else values[:1] + values[-1:]
        if len(values) > 1 and as_number(str(chosen.get(k))) in ends:
            edges.append(k)
    return edges


def parse_setting(setting: str) -> dict[str, str]:
    """`objective=listmle reward_model=judge` -> {"objective": "listmle", "reward_model": "judge"}."""
    return dict(part.split("=", 1) for part in setting.split() if "=" in part)


def as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
