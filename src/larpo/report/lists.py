"""`larpo-lists RUN_DIR [RUN_DIR ...]`: the list statistics of runs, per iteration.

Reads each run's `pool/iteration_<s>.stats.json` (written by every run; a sweep directory is
searched for its runs) and prints, per iteration, the mean over runs and its range: the share of
lists with 1, 2, 3, 4+ distinct reward levels, with three or more, dropped, a single pair, a fully
correct top candidate, and (from `summary.json`) the share of evaluation duels between two wrong
answers (iteration 0 compares the SFT policy with its own samples, so its share is left out).
With `--gates`, also the checks the runs' task should pass: the data option's own `gates`
(`{list statistic: [low, high]}` of the first iteration's lists, the starting policy's samples;
`data=word_problems`: sampled accuracy, lists with a right and a wrong answer, truncation), else
those of a world meant to compare ranking objectives (docs/results.md, the digits world).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

from larpo.report.collect import job_overrides

COLUMNS = [
    "levels_1",
    "levels_2",
    "levels_3",
    "levels_4+",
    "two_levels",
    "three_levels",
    "dropped",
    "single_pair",
    "top_correct",
]


def run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories under the given paths: those that hold a pool/ folder of stats files."""
    found = []
    for path in paths:
        found += sorted({p.parent.parent for p in path.rglob("pool/iteration_*.stats.json")})
    return found


def flatten(stats: dict) -> dict[str, float]:
    levels = {int(k): v for k, v in stats.get("levels", {}).items()}
    row = {f"levels_{k}": levels.get(k, 0.0) for k in (1, 2, 3)}
    row["levels_4+"] = sum(v for k, v in levels.items() if k >= 4)
    for key, value in stats.items():  # every other number: the table shows COLUMNS, gates may read any
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "iteration":
            row[key] = value
    return row


def collect(runs: list[Path]) -> dict[int, list[dict[str, float]]]:
    """iteration -> one row of statistics per run; iteration 0 and later also hold the duels."""
    by_iteration: dict[int, list[dict]] = {}
    for run in runs:
        for path in sorted((run / "pool").glob("iteration_*.stats.json")):
            stats = json.loads(path.read_text())
            by_iteration.setdefault(int(stats["iteration"]), []).append(flatten(stats))
        summary = run / "summary.json"
        if summary.is_file():
            for h in json.loads(summary.read_text()).get("history", []):
                if "wrong_vs_wrong_duels" in h and h["iteration"] in by_iteration:
                    rows = by_iteration[h["iteration"]]
                    rows[-1]["wrong_vs_wrong_duels"] = h["wrong_vs_wrong_duels"]
    return by_iteration


def cell(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def table(by_iteration: dict[int, list[dict[str, float]]]) -> str:
    columns = [*COLUMNS, "wrong_vs_wrong_duels"]
    lines = ["| iteration | runs | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for it in sorted(by_iteration):
        rows = by_iteration[it]
        cells = [cell([r[c] for r in rows if c in r]) for c in columns]
        lines.append(f"| {it} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gates(by_iteration: dict[int, list[dict[str, float]]], sft: list[dict]) -> list[tuple[str, float | None, bool]]:
    """The checks of a world where the order below the top of a list matters (means over runs)."""

    def mean(it: int, key: str) -> float | None:
        values = [r[key] for r in by_iteration.get(it, []) if key in r]
        return statistics.fmean(values) if values else None

    last = max(by_iteration, default=0)  # the final evaluation: a trained policy against the SFT's samples

    def sft_mean(key: str) -> float | None:
        values = [h[key] for h in sft if key in h]
        return statistics.fmean(values) if values else None

    checks = [
        ("three or more reward levels, iteration 1 (>= 0.60)", mean(1, "three_levels"), lambda x: x >= 0.6),
        ("three or more reward levels, iteration 3 (>= 0.40)", mean(3, "three_levels"), lambda x: x >= 0.4),
        ("SFT greedy accuracy (0.40-0.70)", sft_mean("accuracy_greedy"), lambda x: 0.4 <= x <= 0.7),
        ("top of the iteration-1 list fully correct (<= 0.60)", mean(1, "top_correct"), lambda x: x <= 0.6),
        ("wrong-vs-wrong duels, final evaluation (>= 0.30)", mean(last, "wrong_vs_wrong_duels"), lambda x: x >= 0.3),
    ]
    return [(name, value, value is not None and ok(value)) for name, value, ok in checks]


def task_gates(by_iteration: dict[int, list[dict[str, float]]], spec: dict) -> list[tuple[str, float | None, bool]]:
    """A data option's own gates: each list statistic of iteration 1 (the starting policy's lists)
    within its [low, high]; a failed gate says by how much."""
    out = []
    for key, (low, high) in spec.items():
        values = [r[key] for r in by_iteration.get(1, []) if key in r]
        value = statistics.fmean(values) if values else None
        name = f"{key}, iteration 1 ({low:g}-{high:g})"
        if value is not None and value < low:
            name += f", {low - value:.3f} below"
        elif value is not None and value > high:
            name += f", {value - high:.3f} above"
        out.append((name, value, value is not None and low <= value <= high))
    return out


def declared_gates(runs: list[Path]) -> dict | None:
    """The `data.gates` of the runs' saved config (`config.yaml`), if their data option has any."""
    for run in runs:
        saved = run / "config.yaml"
        if saved.is_file():
            gates = (yaml.safe_load(saved.read_text()).get("data") or {}).get("gates")
            if gates:
                return gates
    return None


def settings(runs: list[Path]) -> dict[str, list[Path]]:
    """Runs grouped by their sweep setting: the overrides that differ between them, seed left out."""
    overrides = {run: [o for o in job_overrides(run) if not o.startswith("seed=")] for run in runs}
    common = set.intersection(*(set(o) for o in overrides.values())) if overrides else set()
    groups: dict[str, list[Path]] = {}
    for run, o in overrides.items():
        groups.setdefault(" ".join(x for x in o if x not in common), []).append(run)
    return groups


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="larpo-lists", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or sweep directories")
    parser.add_argument("--gates", action="store_true", help="also check the gates of a ranking testbed")
    args = parser.parse_args(argv)
    runs = run_dirs(args.runs)
    if not runs:
        print("larpo-lists: no run with list statistics (pool/iteration_<s>.stats.json) found", file=sys.stderr)
        raise SystemExit(2)
    for setting, group in settings(runs).items():
        if setting:
            print(f"\n## {setting}\n")
        report(group, args.gates)


def report(runs: list[Path], with_gates: bool) -> None:
    by_iteration = collect(runs)
    print(table(by_iteration))
    if with_gates:
        sft = []  # each run's iteration-0 evaluation: the SFT policy
        for run in runs:
            summary = run / "summary.json"
            if summary.is_file():
                sft += [h for h in json.loads(summary.read_text()).get("history", []) if h["iteration"] == 0]
        print()
        spec = declared_gates(runs)
        for name, value, ok in task_gates(by_iteration, spec) if spec else gates(by_iteration, sft):
            shown = "n/a" if value is None else f"{value:.3f}"
            print(f"{'pass' if ok else 'FAIL'}  {name}: {shown}")
