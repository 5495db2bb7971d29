"""Write regime (a)'s stage 2, `regime_a_confirm`, from stage 1's choices, mechanically.

Committed 2026-11-28, before the results of the bracketing rule's last step
(experiments/regime_a_extend3.sh), so that the way the choices become the confirmation is fixed
before the choices are known. Run it after the stage-1 reports are written whole:

    larpo-report multirun/regime_a_bracketed --out docs/results/regime_a_bracketed/results.md
    larpo-report multirun/regime_a_bracketed_raft --out docs/results/regime_a_bracketed_raft/results.md
    python experiments/regime_a_confirm.py

It reads each report's `choices.json` and writes `conf/method/regime_a_<objective>.yaml` (that
objective's chosen lr, beta and number of iterations) and `conf/experiment/regime_a_confirm.yaml`
(the four methods on fresh seeds 5-9, everything else as in stage 1, evaluated once at the end;
the primary metric and the four claims fixed in stage 1's header). Commit what it writes, in a
commit of its own, before running `larpo -m experiment=regime_a_confirm`.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OBJECTIVES = ("pairwise", "contrastive", "listmle")  # LambdaRank was not run in stage 1
CLAIMS = [  # stage 1's header (src/larpo/conf/experiment/regime_a_bracketed.yaml), Holm over 4
    ("listmle", "raft"),
    ("contrastive", "raft"),
    ("pairwise", "raft"),
    ("listmle", "pairwise"),
]


def number(value: str) -> str:
    """A YAML float that every YAML loader reads as one (`3e-05` is a string to YAML 1.1)."""
    x = float(value)
    return f"{x:.1e}" if x < 1e-2 else repr(x)


def chosen(results: Path) -> dict[str, dict]:
    """{objective: its row of choices.json} from both stage-1 reports."""
    out = {}
    for row in json.loads((results / "regime_a_bracketed" / "choices.json").read_text())["settings"]:
        name = row["setting"].removeprefix("objective=")
        if name in OBJECTIVES:
            out[name] = row
    (raft,) = json.loads((results / "regime_a_bracketed_raft" / "choices.json").read_text())["settings"]
    out["raft"] = raft
    missing = [n for n in (*OBJECTIVES, "raft") if n not in out]
    if missing:
        raise SystemExit(f"regime_a_confirm: no stage-1 choice for {', '.join(missing)}")
    return out


def method_yaml(name: str, row: dict) -> str:
    c = row["chosen"]
    score = row["score"]
    ends = ", ".join(row["at_an_end"]) or "none"
    lines = [
        "# @package _global_",
        f"# Regime (a)'s choice for {name} (stage 1: validation split, seeds 0-4, mean "
        f"val_exact_win_rate_vs_sft {score['mean']:.3f}),",
        "# written by experiments/regime_a_confirm.py from docs/results/regime_a_bracketed*/choices.json.",
        f"# At an end of its grid: {ends}.",
        "defaults:",
        f"  - override /objective: {name}",
        f"lr: {number(c['lr'])}",
    ]
    if "beta" in c:
        lines.append(f"beta: {number(c['beta'])}")
    lines.append(f"iterations: {int(c['iteration'])}")
    return "\n".join(lines) + "\n"


def experiment_yaml(rows: dict[str, dict]) -> str:
    settings = ", ".join(
        f"{n} ({', '.join(f'{k} {v}' for k, v in rows[n]['chosen'].items())})" for n in (*OBJECTIVES, "raft")
    )
    lines = [
        "# @package _global_",
        "# PRE-REGISTERED (stage 2 of 2, confirmation), written by experiments/regime_a_confirm.py from",
        "# stage 1's choices and committed before any of its results. Regime (a): the ranking loss alone",
        "# (sft_weight=0), the SFT policy as the fixed reference, every objective on the same k=4 lists of",
        "# the arithmetic world, each at the (lr, beta, iterations) it chose on the validation split with",
        *textwrap.wrap(f"seeds 0-4: {settings}.", 96, initial_indent="# ", subsequent_indent="# "),
        "# Only these fresh seeds (5-9) go into the claims. Primary metric and claims fixed in stage 1:",
        "# exact_win_rate_vs_sft on the test split; Holm over the 4 claims below.",
        "defaults:",
        "  - override /reward_model: judge",
        "experiment_name: regime_a_confirm",
        "sft_weight: 0.0",
        "reference: initial",
        "candidate_list:",
        "  size: 4",
        "data:",
        "  prompts_per_iteration: 1024",
        "eval:",
        "  every_iteration: false",
        "  validation: 0.3          # the same test split as stage 1's",
        "report:",
        "  figure: bar",
        "  metric: exact_win_rate_vs_sft",
        "  baseline: method=regime_a_raft",
        "  claims:",
        *[f'    - "method=regime_a_{a} > method=regime_a_{b}"' for a, b in CLAIMS],
        "hydra:",
        "  sweeper:",
        "    params:",
        f"      method: {','.join(f'regime_a_{n}' for n in (*OBJECTIVES, 'raft'))}",
        "      seed: 5,6,7,8,9",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--conf", type=Path, default=ROOT / "src" / "larpo" / "conf")
    args = parser.parse_args(argv)
    rows = chosen(args.results)
    for name, row in rows.items():
        path = args.conf / "method" / f"regime_a_{name}.yaml"
        path.write_text(method_yaml(name, row))
        print(f"{path}: {row['overrides']} (at an end: {', '.join(row['at_an_end']) or 'none'})")
    path = args.conf / "experiment" / "regime_a_confirm.yaml"
    path.write_text(experiment_yaml(rows))
    print(path)


if __name__ == "__main__":
    main()
