"""`larpo-report <dir | runs.csv> ...`: results.md, results.png and runs.csv from a run or sweep.

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
import json
from pathlib import Path

from larpo.report.collect import EXACT, METRICS, collect, load, read_runs_csv, tune, write_history_csv, write_runs_csv
from larpo.report.figures import figure, history_figure
from larpo.report.stats import ALPHA, MARGIN, MOVED
from larpo.report.tables import (
    choices,
    claims,
    claims_table,
    joint_tuning_table,
    paired_table,
    seeds_table,
    table,
    tuning_table,
)


def write_report(source: Path | list[Path], out: Path | None = None, half_width: float | None = None) -> Path:
    """Write results.md, results.png and runs.csv for a sweep directory or a runs.csv, or for
    several of them merged (one experiment run in parts): the first says where by default.
    `half_width`: also the seeds each claim needs for a 95% CI of that half-width."""
    sources = source if isinstance(source, list) else [source]
    source = sources[0]
    from_csv = source.is_file() and source.suffix == ".csv"
    sweep = load(sources) if len(sources) > 1 else read_runs_csv(source) if from_csv else collect(source)
    out = out or (source.parent if from_csv else source) / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs_csv = out.with_name("runs.csv")
    if not from_csv or len(sources) > 1 or runs_csv.resolve() != source.resolve():
        write_runs_csv(sweep, runs_csv)
        write_history_csv(sweep, runs_csv.with_name("history.csv"))
        runs_csv.with_name("report.json").write_text(json.dumps(sweep.report, indent=2, allow_nan=False) + "\n")
    tuned = tune(sweep)
    if tuned:  # the choices as data, e.g. to confirm them on fresh seeds
        keys, by = sweep.report["tune"].split(), sweep.report.get("tune_by") or "val_win_rate_vs_sft"
        text = json.dumps(choices(tuned, keys, by), indent=2, allow_nan=False)
        out.with_name("choices.json").write_text(text + "\n")
    else:  # no stale choices from an earlier report of another sweep
        out.with_name("choices.json").unlink(missing_ok=True)
    png = figure(sweep, out.with_suffix(".png"))
    name = sweep.name or source.stem
    metrics = METRICS + [m for m in EXACT if any(m in r.final for r in sweep.runs)]
    parts = [
        f"# Results: {name}",
        "",
        f"Final metrics on the held-out prompts, judged by the gold judge; {len(sweep.seeds)} seed(s) "
        f"({', '.join(map(str, sweep.seeds))}). Mean ± 95% confidence interval (Student t) over seeds; "
        "one seed shows no interval. The SFT row is each seed's starting policy.",
        "",
        *tuning_section(sweep, tuned),
        table(sweep, metrics) if sweep.runs else "No finished job found.",
        "",
        *comparison_sections(sweep, metrics, half_width),
    ]
    if png:
        parts += [f"![{name}]({png.name})", ""]
    per_iteration = history_figure(sweep, out.with_name("history.png"))
    if per_iteration:
        parts += ["## Per iteration", "", f"![{name} per iteration]({per_iteration.name})", ""]
    parts += provenance_sections(sweep)
    out.write_text("\n".join(parts))
    return out


def provenance_sections(sweep) -> list[str]:
    """Where the runs came from: reused runs, duplicates, execution settings, missing jobs."""
    parts: list[str] = []
    reused = [r for r in sweep.runs if r.reused_from]
    if reused:
        parts += [
            "## Reused runs",
            "",
            f"{len(reused)} of {len(sweep.runs)} jobs had the config of a run finished before (another experiment's,",
            "or a rerun's) and reused its results instead of training again (`reuse=false` trains them):",
            "",
            *[f"- {r.setting or '(every job)'} seed={r.seed}: {r.reused_from}" for r in reused],
            "",
        ]
    if sweep.duplicates:
        parts += ["## Duplicate runs (counted once: the first)", "", *[f"- {d}" for d in sweep.duplicates], ""]
    if sweep.machines:
        parts += [
            "## Where the jobs ran",
            "",
            "The jobs ran under more than one execution setting (device, precision, logger, launcher), left out of"
            " the settings above (no two runs of one seed merged):",
            "",
            *[f"- {e or '(the defaults)'}: {n} finished job(s)" for e, n in sweep.machines.items()],
            "",
        ]
    if sweep.failed:
        parts += ["## Missing or failed jobs", "", *[f"- {f}" for f in sweep.failed], ""]
    return parts


def tuning_section(sweep, tuned: list[dict]) -> list[str]:
    if not tuned:
        return []
    key, by = sweep.report["tune"], sweep.report.get("tune_by") or "val_win_rate_vs_sft"
    keys = key.split()
    table = tuning_table(tuned, key, by) if len(keys) == 1 else joint_tuning_table(tuned, keys, by)
    edges = [f"{row['setting'] or 'the runs'} ({', '.join(row['edges'])})" for row in tuned if row["edges"]]
    warning = (
        ["", f"**The grid does not bracket the choice** for {'; '.join(edges)}: extend it past that end."]
        if edges
        else []
    )
    return [
        f"## {key} chosen per setting on the validation split",
        "",
        f"Each setting's {key} is the one with the best mean {by} (validation prompts, disjoint from",
        "the test prompts). Every table, claim and figure below shows the runs of that choice, on the",
        "test prompts. runs.csv holds every run.",
        "",
        table,
        *warning,
        "",
        "## Test metrics of the chosen runs",
        "",
    ]


def comparison_sections(sweep, metrics: list[str], half_width: float | None = None) -> list[str]:
    """The paired differences to the baseline, the claims with their verdicts, and (`half_width`)
    the seeds each claim needs for that 95% half-width."""
    parts = []
    if len(sweep.settings) > 1:
        parts += [
            f"## Paired differences to the baseline ({sweep.baseline})",
            "",
            "Per seed, setting minus baseline (same SFT policy, prompts and evaluation prompts), then mean",
            "± 95% CI of the differences (paired t).",
            "",
            paired_table(sweep, metrics),
            "",
        ]
    if any(sweep.sft_by_seed(m) for m in metrics):
        parts += [
            "## Paired gains over the SFT policy",
            "",
            "Per seed, setting minus that seed's starting policy (iteration 0, the same evaluation), then",
            "mean ± 95% CI of the differences (paired t); not a claim unless the experiment names it.",
            "",
            paired_table(sweep, metrics, against_sft=True),
            "",
        ]
    metric = sweep.report.get("metric") or "win_rate_vs_sft"
    rows = claims(sweep, metric)
    if rows:
        parts += [
            "## Claims",
            "",
            f"Rule (README): on the paired differences in {metric}, Holm-adjusted over this experiment's",
            f"claims: **reproduced** if p < {ALPHA} and the difference is positive; **not reproduced** if",
            f"p < {ALPHA} and it is negative, or (equivalence, when both settings moved from SFT by at least {MOVED})",
            f"the 90% CI lies inside ±{MARGIN}; else **inconclusive**.",
            "",
            claims_table(rows, metric),
            "",
        ]
    if rows and half_width:
        parts += [
            f"## Seeds for a 95% half-width of ±{half_width:g}",
            "",
            "At each claim's observed standard deviation of the per-seed differences, the fewest seeds",
            "whose paired t interval is that narrow (Student t with n-1 degrees of freedom).",
            "",
            seeds_table(rows, half_width),
            "",
        ]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(prog="larpo-report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        type=Path,
        nargs="+",
        help="a run or sweep directory, or a runs.csv to rebuild from; several are merged (a sweep run in parts)",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write results.md (default: beside the first)")
    parser.add_argument(
        "--half-width",
        type=float,
        default=None,
        metavar="H",
        help="also print, per claim, the seeds its paired 95%% CI needs to reach a half-width of H",
    )
    args = parser.parse_args()
    if args.half_width is not None and not args.half_width > 0:
        parser.error(f"--half-width={args.half_width}: must be > 0, e.g. --half-width 0.03")
    for source in args.source:
        if not (source.is_dir() or (source.is_file() and source.suffix == ".csv")):
            parser.error(f"{source} is neither a directory nor a runs.csv")
    path = write_report(args.source, args.out, args.half_width)
    print(path.read_text())


if __name__ == "__main__":
    main()
