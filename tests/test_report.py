"""larpo-report on a real 2-job sweep: the table it writes, failed jobs, and reading only JSON."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.configs import MICRO
from helpers.env import ENV, sweep_cli

from larpo.report.cli import write_report
from larpo.report.collect import collect
from larpo.report.stats import holm, mean_ci, paired, t_pvalue, t_quantile, verdict
from larpo.report.tables import claims


def test_mean_ci_is_student_t():
    m, h = mean_ci([0.5, 0.7])
    assert m == pytest.approx(0.6) and h == pytest.approx(12.7062 * math.sqrt(0.02) / math.sqrt(2), rel=1e-4)
    assert mean_ci([0.4]) == (0.4, None)  # one seed: no interval


@pytest.mark.parametrize(("dof", "quantile"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantiles_and_pvalues_match_the_tables(dof, quantile):
    assert t_quantile(dof) == pytest.approx(quantile, abs=1e-4)
    assert t_pvalue(quantile, dof) == pytest.approx(0.05, abs=1e-5)


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def write_job(root: Path, i: int, overrides: list[str], seed: int, final: dict, sft: dict, report: dict | None = None):
    job = root / str(i)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in [*overrides, f"seed={seed}"]))
    config = {"seed": seed, "experiment_name": "synthetic", "report": report or {}}
    history = [{"iteration": 0, **sft}, {"iteration": 1, **final}]
    (job / "summary.json").write_text(
        json.dumps({"config": config, "history": history, "final": final, "timing": {"total": 10.0 + i}})
    )


BASE = [0.50, 0.56, 0.53, 0.59, 0.52]  # seeds differ a lot: the SFT policy and prompts differ
GAIN = [0.021, 0.019, 0.024, 0.018, 0.023]  # the setting beats the baseline on every seed


def synthetic_sweep(root: Path) -> None:
    report = {"baseline": "objective=pairwise", "claims": ["objective=listmle > objective=pairwise"]}
    i = 0
    for seed, (b, g) in enumerate(zip(BASE, GAIN)):
        for name, value in (("pairwise", b), ("listmle", b + g)):
            write_job(
                root,
                i,
                [f"objective={name}"],
                seed,
                {"win_rate_vs_sft": value},
                {"win_rate_vs_sft": 0.5},
                report,
            )
            i += 1


def test_paired_test_decides_where_unpaired_intervals_overlap(tmp_path):
    """5 seeds. Unpaired: pairwise 0.540 ± 0.0439, listmle 0.561 ± 0.0417: the intervals overlap
    ([0.496, 0.584] and [0.519, 0.603]). Paired: listmle - pairwise = 0.021 ± 0.0032 (t = 18.4,
    p = 5.1e-05): reproduced."""
    synthetic_sweep(tmp_path)
    sweep = collect(tmp_path)
    (m_b, h_b), (m_l, h_l) = (
        mean_ci(list(sweep.by_seed(s, "win_rate_vs_sft").values())) for s in ("objective=pairwise", "objective=listmle")
    )
    assert (m_b, h_b) == pytest.approx((0.540, 0.04390), abs=5e-5)
    assert (m_l, h_l) == pytest.approx((0.561, 0.04167), abs=5e-5)
    assert m_l - h_l < m_b + h_b  # unpaired: overlapping intervals, undecided
    d = paired(
        sweep.by_seed("objective=listmle", "win_rate_vs_sft"),
        sweep.by_seed("objective=pairwise", "win_rate_vs_sft"),
    )
    assert (d.mean, d.half, d.n) == (pytest.approx(0.021), pytest.approx(0.003166, abs=1e-6), 5)
    assert d.p == pytest.approx(5.1e-05, rel=0.02)
    (row,) = claims(sweep, "win_rate_vs_sft")
    assert row["verdict"] == "reproduced" and row["p_holm"] == pytest.approx(d.p)

    md = write_report(tmp_path).read_text()
    assert "| objective=listmle > objective=pairwise | 0.021 ± 0.003 | 5 | 5.11e-05 | 5.11e-05 | **reproduced** |" in md
    assert "| objective=listmle | 5 | 0.021 ± 0.003 |" in md  # the paired-differences table


def test_each_setting_gets_its_paired_gain_over_the_sft_policy(tmp_path):
    """The SFT policy differs a lot between seeds (0.3, 0.5, 0.7) and training adds 0.10, 0.12 and
    0.11: the gain is 0.110 ± 4.303 x 0.01 / sqrt(3) = 0.025 paired, where the unpaired intervals
    (± 0.5) would say nothing."""
    for seed, (sft, gain) in enumerate(zip([0.3, 0.5, 0.7], [0.10, 0.12, 0.11])):
        for i, name in enumerate(("pairwise", "listmle")):
            final = {"win_rate_vs_sft": sft + gain + 0.01 * i}
            write_job(tmp_path, 2 * seed + i, [f"objective={name}"], seed, final, {"win_rate_vs_sft": sft})
    md = write_report(tmp_path).read_text()
    section = md.split("## Paired gains over the SFT policy")[1].split("##")[0]
    assert "| objective=pairwise | 3 | 0.110 ± 0.025 |" in section
    assert "| objective=listmle | 3 | 0.120 ± 0.025 |" in section
    # evaluated at the start and the end only: the per-iteration figure draws those two points
    assert "![synthetic per iteration](history.png)" in md
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"


def test_the_figure_shows_the_claims_metric_first(tmp_path):
    """A sweep whose claims are about `exact_win_rate_vs_sft` gets that panel first, then the usual
    three where they have values; without `report.metric`, the usual ones only."""
    from larpo.report.figures import plotted

    for i, (name, value) in enumerate((("pairwise", 0.55), ("raft", 0.6))):
        final = {"win_rate_vs_sft": value, "exact_win_rate_vs_sft": value + 0.01, "accuracy_greedy": 0.9}
        write_job(tmp_path / "m", i, [f"objective={name}"], 0, final, {}, {"metric": "exact_win_rate_vs_sft"})
        write_job(tmp_path / "d", i, [f"objective={name}"], 0, final, {})
    assert plotted(collect(tmp_path / "m")) == ["exact_win_rate_vs_sft", "win_rate_vs_sft", "accuracy_greedy"]
    assert plotted(collect(tmp_path / "d")) == ["win_rate_vs_sft", "accuracy_greedy"]


def test_verdicts_follow_the_rule():
    base = {s: 0.5 for s in range(5)}
    worse = paired({s: 0.47 + 0.001 * s for s in range(5)}, base)
    assert verdict(worse, worse.p) == "not reproduced"  # significant, the wrong way
    flat = paired({s: 0.5 + (0.002 if s % 2 else -0.002) for s in range(5)}, base)
    assert verdict(flat, 1.0) == "not reproduced"  # the interval rules out a gain of 0.01
    noisy = paired({s: 0.5 + (0.05 if s % 2 else -0.04) for s in range(5)}, base)
    assert verdict(noisy, 1.0) == "inconclusive"
    single = paired({0: 0.6}, {0: 0.5})
    assert single.half is None and verdict(single, None) == "inconclusive"
    assert verdict(flat, 1.0, moved=False) == "inconclusive"  # equivalence needs both settings to have moved
    assert flat.half90 < flat.half  # the equivalence test's 90% interval (TOST at 5%)
    edge = paired({s: 0.5 + (0.0075 if s % 2 else -0.0075) for s in range(5)}, base)
    assert edge.half90 < 0.01 < edge.half and verdict(edge, 1.0) == "not reproduced"  # 90%, not 95%


def equivalence_sweep(root: Path, shift: float) -> None:
    """Two settings equal to within ±0.002 on every seed, both `shift` above the SFT policy."""
    report = {"baseline": "objective=a", "claims": ["objective=b > objective=a"]}
    i = 0
    for seed in range(5):
        for name, value in (("a", 0.5 + shift), ("b", 0.5 + shift + (0.002 if seed % 2 else -0.002))):
            write_job(
                root, i, [f"objective={name}"], seed, {"win_rate_vs_sft": value}, {"win_rate_vs_sft": 0.5}, report
            )
            i += 1


@pytest.mark.parametrize(
    ("shift", "expected"), [(0.0, "inconclusive"), (0.008, "inconclusive"), (0.05, "not reproduced")]
)
def test_equivalence_needs_settings_that_moved_from_sft(tmp_path, shift, expected):
    """Two settings that did not move from the SFT policy are trivially within ±0.01 of each other:
    that says nothing about the claim. Only when both moved by 0.03 does a tight interval say
    "no gain" (0.508 vs 0.509 was "not reproduced" before this rule)."""
    equivalence_sweep(tmp_path, shift)
    (row,) = claims(collect(tmp_path), "win_rate_vs_sft")
    assert row["verdict"] == expected


def test_runs_csv_rebuilds_the_same_report_and_duplicates_count_once(tmp_path):
    sweep_dir = tmp_path / "sweep"
    synthetic_sweep(sweep_dir)
    write_job(sweep_dir, 99, ["objective=listmle"], 0, {"win_rate_vs_sft": 0.9}, {"win_rate_vs_sft": 0.5})  # a rerun
    first = write_report(sweep_dir, tmp_path / "a" / "results.md")
    rows = list(csv.DictReader(open(first.with_name("runs.csv"))))
    assert len(rows) == 10 and set(rows[0]) >= {
        "experiment",
        "setting",
        "seed",
        "wall_time_s",
        "win_rate_vs_sft",
    }
    assert rows[1] == {
        **rows[1],
        "experiment": "synthetic",
        "setting": "objective=listmle",
        "seed": "0",
        "wall_time_s": "11.0",
    }
    text = first.read_text()
    assert "## Duplicate runs (counted once: the first)" in text and "objective=listmle seed=0" in text
    assert "| objective=listmle | 5 | 0.561 ± 0.042 |" in text  # the 0.9 rerun is not a sixth seed
    rebuilt = write_report(first.with_name("runs.csv"), tmp_path / "b" / "results.md")
    same = [line for line in text.splitlines() if line.startswith("|")]
    assert [line for line in rebuilt.read_text().splitlines() if line.startswith("|")] == same
    assert rebuilt.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_a_sweep_run_in_parts_merges_into_the_whole_sweeps_report(tmp_path):
    """Seeds 0-1 committed as a runs.csv (an earlier session's), seeds 2-3 and 4 run since in two
    directories: `larpo-report` of the three gives the report of the sweep run at once, and a
    (setting, seed) found twice counts once, the first source's."""
    synthetic_sweep(tmp_path / "whole")
    whole = write_report(tmp_path / "whole", tmp_path / "w" / "results.md").read_text()
    jobs = sorted((tmp_path / "whole").iterdir(), key=lambda p: int(p.name))
    for name, part in (("early", jobs[:4]), ("mid", jobs[4:8]), ("late", jobs[8:])):
        for job in part:
            shutil.copytree(job, tmp_path / name / job.name)
    write_report(tmp_path / "early", tmp_path / "committed" / "results.md")
    shutil.rmtree(tmp_path / "early")
    write_job(tmp_path / "late", 50, ["objective=listmle"], 0, {"win_rate_vs_sft": 0.9}, {"win_rate_vs_sft": 0.5})
    merged = write_report(
        [tmp_path / "committed" / "runs.csv", tmp_path / "mid", tmp_path / "late"], tmp_path / "m" / "results.md"
    ).read_text()
    rows = list(csv.DictReader(open(tmp_path / "m" / "runs.csv")))
    assert sorted((r["setting"], r["seed"]) for r in rows) == sorted(
        (f"objective={o}", str(s)) for o in ("pairwise", "listmle") for s in range(5)
    )
    tables = [line for line in whole.splitlines() if line.startswith("|")]
    assert [line for line in merged.splitlines() if line.startswith("|")] == tables
    assert "objective=listmle seed=0" in merged.split("## Duplicate runs")[1]  # the 0.9 rerun, not counted


def test_tuning_chooses_on_validation_and_reports_the_test_metrics(tmp_path):
    """Two objectives x two learning rates x 5 seeds. On validation, pairwise is best at 1e-5 and
    listmle at 1e-4; on test, pairwise at 1e-4 would look better, but the report must not peek."""
    report = {"baseline": "objective=pairwise", "claims": ["objective=listmle > objective=pairwise"], "tune": "lr"}
    val = {
        ("pairwise", "1e-05"): 0.55,
        ("pairwise", "0.0001"): 0.52,
        ("listmle", "1e-05"): 0.51,
        ("listmle", "0.0001"): 0.57,
    }
    test = {
        ("pairwise", "1e-05"): 0.54,
        ("pairwise", "0.0001"): 0.60,
        ("listmle", "1e-05"): 0.50,
        ("listmle", "0.0001"): 0.56,
    }
    i = 0
    for seed, wobble in enumerate([0.0, 0.01, -0.01, 0.004, -0.004]):
        for (name, lr), v in val.items():
            slope = 0.002 if name == "listmle" else 0.001
            final = {"win_rate_vs_sft": test[name, lr] + wobble + slope * seed, "val_win_rate_vs_sft": v + wobble}
            write_job(
                tmp_path / "sweep", i, [f"objective={name}", f"lr={lr}"], seed, final, {"win_rate_vs_sft": 0.5}, report
            )
            i += 1
    md = write_report(tmp_path / "sweep", tmp_path / "out" / "results.md").read_text()
    # validation: wobble sd 0.00762, half-width 2.776 * 0.00762 / sqrt(5) = 0.0095
    assert "| objective=pairwise | 0.550 ± 0.009 | 0.520 ± 0.009 | lr=1e-05 |" in md
    assert "| objective=listmle | 0.510 ± 0.009 | 0.570 ± 0.009 | lr=0.0001 |" in md
    # test metrics of the chosen runs only: pairwise 0.54 + 0.002 (mean of 0.001 * seed), listmle 0.56 + 0.004
    assert "| objective=pairwise | 5 | 0.542 ± " in md and "| objective=listmle | 5 | 0.564 ± " in md
    # paired: 0.02 + 0.001 * seed, mean 0.022, sd 0.00158, half-width 2.776 * 0.00158 / sqrt(5) = 0.0020
    assert "| objective=listmle > objective=pairwise | 0.022 ± 0.002 | 5 |" in md
    rows = list(csv.DictReader(open(tmp_path / "out" / "runs.csv")))
    assert len(rows) == 20 and {r["setting"] for r in rows} >= {"objective=pairwise lr=0.0001"}  # every run kept
    picked = json.loads((tmp_path / "out" / "choices.json").read_text())
    assert [(c["overrides"], c["at_an_end"]) for c in picked["settings"]] == [
        ("objective=pairwise lr=1e-05", ["lr"]),
        ("objective=listmle lr=0.0001", ["lr"]),
    ]
    assert picked["settings"][1]["runner_up"]["score"]["mean"] == pytest.approx(0.51)
    rebuilt = write_report(tmp_path / "out" / "runs.csv").read_text()
    assert [x for x in rebuilt.splitlines() if x.startswith("|")] == [x for x in md.splitlines() if x.startswith("|")]


def test_one_seed_shows_no_interval(tmp_path):
    write_job(tmp_path, 0, ["objective=listmle"], 0, {"win_rate_vs_sft": 0.61}, {"win_rate_vs_sft": 0.5})
    write_job(tmp_path, 1, ["objective=pairwise"], 0, {"win_rate_vs_sft": 0.58}, {"win_rate_vs_sft": 0.5})
    (tmp_path / "choices.json").write_text("{}")  # an earlier report's: nothing is chosen in this one
    text = write_report(tmp_path).read_text()
    assert not (tmp_path / "choices.json").exists()
    rows = [line for line in text.splitlines() if line.startswith("| objective=")]
    assert rows[0].startswith("| objective=listmle | 1 | 0.610 |") and not any("±" in r for r in rows)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.slow
def test_report_of_a_sweep(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    sweep_cli(sweep, *MICRO, f"model.cache_dir={cache_dir}", "iterations=1", "seed=0,1")
    finals = [__import__("json").loads((sweep / str(i) / "summary.json").read_text())["final"] for i in (0, 1)]

    # a job that started and died, and a booby-trapped checkpoint from "another user"
    (sweep / "2" / ".hydra").mkdir(parents=True)
    (sweep / "2" / ".hydra" / "overrides.yaml").write_text("- objective=contrastive\n- seed=0\n")
    marker = tmp_path / "pwned"
    (sweep / "0" / "checkpoints").mkdir(exist_ok=True)
    torch.save({"x": Exploit(str(marker))}, sweep / "0" / "checkpoints" / "last.ckpt")

    command = Path(sys.executable).parent / "larpo-report"  # the installed console script
    report = subprocess.run([str(command), str(sweep)], capture_output=True, text=True, env=ENV, timeout=120)
    assert report.returncode == 0, report.stderr
    text = (sweep / "results.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| (every job) | 2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    mean, half = (float(x) for x in cells[2].split("±"))  # win_rate_vs_sft
    m, h = mean_ci([f["win_rate_vs_sft"] for f in finals])
    assert mean == pytest.approx(m, abs=5e-4) and half == pytest.approx(h, abs=5e-4)
    assert "## Missing or failed jobs" in text and "objective=contrastive" in text
    assert not marker.exists()


def test_per_iteration_history_is_drawn_and_rebuilt_from_csv(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (lr, greedy) in enumerate([("1e-4", [0.93, 0.90, 0.86, 0.82]), ("3e-5", [0.93, 0.93, 0.92, 0.92])]):
        job = sweep / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- lr={lr}\n- seed=0\n")
        history = [
            {"iteration": s, "accuracy_greedy": g, "accuracy_sampled": 0.5 + 0.05 * s} for s, g in enumerate(greedy)
        ]
        summary = {"config": {"seed": 0, "experiment_name": "greedy"}, "history": history, "final": history[-1]}
        (job / "summary.json").write_text(json.dumps(summary))
    md = write_report(sweep, tmp_path / "out" / "results.md")
    assert "![greedy per iteration](history.png)" in md.read_text()
    rows = list(csv.DictReader(open(md.with_name("history.csv"))))
    assert [(r["setting"], r["iteration"], r["accuracy_greedy"]) for r in rows][:2] == [
        ("lr=1e-4", "0", "0.93"),
        ("lr=1e-4", "1", "0.9"),
    ]
    md.with_name("history.png").unlink()
    rebuilt = write_report(md.with_name("runs.csv"))
    assert rebuilt.with_name("history.png").read_bytes()[:4] == b"\x89PNG"


def test_joint_tuning_over_lr_beta_and_iteration_flags_unbracketed_choices(tmp_path):
    """Three objectives x lr {1e-5, 1e-4, 1e-3} x beta {0.1, 0.3, 1.0} x 5 seeds, each evaluated
    after iterations 1-3. On validation, pairwise is best at (1e-4, 0.3, iteration 2), inside every
    grid; listmle at (1e-3, 0.1, iteration 3), at an end of all three: the report must say the
    grid does not bracket those; contrastive at (1e-4, 0.3, iteration 1), bracketed (iteration 0 is
    the SFT policy). The tables show the test metrics of the chosen evaluation only; rebuilt from
    the csv files alone, the same."""
    report = {
        "baseline": "objective=pairwise",
        "claims": ["objective=listmle > objective=pairwise"],
        "tune": "lr beta iteration",
    }
    best = {"pairwise": ("0.0001", "0.3", 2), "listmle": ("0.001", "0.1", 3), "contrastive": ("0.0001", "0.3", 1)}
    i = 0
    for seed, wobble in enumerate([0.0, 0.01, -0.01, 0.004, -0.004]):
        for name in ("pairwise", "listmle", "contrastive"):
            for lr in ("1e-05", "0.0001", "0.001"):
                for beta in ("0.1", "0.3", "1.0"):
                    history = [{"iteration": 0, "win_rate_vs_sft": 0.5, "val_win_rate_vs_sft": 0.5}]
                    for it in (1, 2, 3):
                        chosen = (lr, beta, it) == best[name]
                        val = (0.60 if chosen else 0.55 - 0.01 * it) + wobble
                        test = (
                            {"pairwise": 0.58, "listmle": 0.61, "contrastive": 0.59}[name] + wobble if chosen else 0.7
                        )
                        history.append({"iteration": it, "win_rate_vs_sft": test, "val_win_rate_vs_sft": val})
                    job = tmp_path / "sweep" / str(i)
                    (job / ".hydra").mkdir(parents=True)
                    overrides = [f"objective={name}", f"lr={lr}", f"beta={beta}", f"seed={seed}"]
                    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
                    config = {"seed": seed, "experiment_name": "synthetic", "report": report}
                    summary = {"config": config, "history": history, "final": history[-1], "timing": {"total": 1.0}}
                    (job / "summary.json").write_text(json.dumps(summary))
                    i += 1
    md = write_report(tmp_path / "sweep", tmp_path / "out" / "results.md").read_text()
    assert "| objective=pairwise | lr=0.0001 beta=0.3 iteration=2 | 0.600 ± 0.009 |" in md
    assert "| objective=listmle | lr=0.001 beta=0.1 iteration=3 | 0.600 ± 0.009 |" in md
    assert "| objective=pairwise | lr=0.0001 beta=0.3 iteration=2 | 0.600 ± 0.009 | " in md
    listmle_row = next(x for x in md.splitlines() if x.startswith("| objective=listmle | lr=0.001"))
    assert listmle_row.endswith("| lr, beta, iteration |")
    assert md.splitlines()[[x.startswith("| objective=pairwise | lr=") for x in md.splitlines()].index(True)].endswith(
        "| none |"
    )
    assert "**The grid does not bracket the choice** for objective=listmle (lr, beta, iteration):" in md
    # iteration 1 is not an end: below it lies iteration 0, the SFT policy itself
    contrastive_row = next(x for x in md.splitlines() if x.startswith("| objective=contrastive | lr=0.0001"))
    assert contrastive_row.endswith("| none |")
    # the chosen evaluations' test metrics, never the 0.7 of the others
    assert "| objective=pairwise | 5 | 0.580 ± 0.009 |" in md and "| objective=listmle | 5 | 0.610 ± 0.009 |" in md
    assert "| objective=listmle > objective=pairwise | 0.030 ± 0.000 | 5 |" in md
    rebuilt = write_report(tmp_path / "out" / "runs.csv").read_text()
    assert [x for x in rebuilt.splitlines() if x.startswith("|")] == [x for x in md.splitlines() if x.startswith("|")]
    # the choices as data: the values, their score, the ends, the overrides that run them again
    picked = {c["setting"]: c for c in json.loads((tmp_path / "out" / "choices.json").read_text())["settings"]}
    assert picked["objective=listmle"]["chosen"] == {"lr": "0.001", "beta": "0.1", "iteration": "3"}
    assert picked["objective=listmle"]["at_an_end"] == ["lr", "beta", "iteration"]
    assert picked["objective=contrastive"]["at_an_end"] == []
    pairwise = picked["objective=pairwise"]
    assert pairwise["overrides"] == "objective=pairwise lr=0.0001 beta=0.3 iterations=2"
    assert pairwise["score"]["mean"] == pytest.approx(0.600) and pairwise["score"]["seeds"] == 5
    assert pairwise["score"]["ci95"] == pytest.approx(0.009, abs=5e-4)
    assert pairwise["runner_up"]["score"]["mean"] == pytest.approx(0.54)  # iteration 1 of another (lr, beta)
    assert pairwise["runner_up"]["chosen"]["iteration"] == "1"


def test_a_sweep_continued_on_another_machine_keeps_its_settings(tmp_path):
    """Seeds 0-2 ran with `trainer=gpu trainer.precision=32-true`, seeds 3-4 were finished on the
    CPU without those overrides: the settings are still `objective=...` (paired by seed over all
    five), and the report says where the jobs ran. Where the device is what a sweep varies (two
    runs of one seed would merge), it stays in the setting."""
    i = 0
    for seed in range(5):
        machine = ["trainer=gpu", "trainer.precision=32-true"] if seed < 3 else []
        for name, value in (("pairwise", 0.50), ("listmle", 0.52)):
            write_job(
                tmp_path / "sweep",
                i,
                [f"objective={name}", *machine],
                seed,
                {"win_rate_vs_sft": value + 0.001 * seed},
                {},
            )
            i += 1
    md = write_report(tmp_path / "sweep", tmp_path / "out" / "results.md").read_text()
    assert "| objective=listmle | 5 | 0.020 ± 0.000 |" in md
    assert (
        "- trainer=gpu trainer.precision=32-true: 6 finished job(s)" in md
        and "- (the defaults): 4 finished job(s)" in md
    )
    both = tmp_path / "both"
    for i, machine in enumerate(["trainer=gpu", "trainer=cpu"]):
        write_job(both, i, ["objective=listmle", machine], 0, {"win_rate_vs_sft": 0.5 + i / 10}, {})
    assert sorted(r.setting for r in collect(both).runs) == ["trainer=cpu", "trainer=gpu"]
    assert collect(both).machines == {}


def test_a_grid_extended_by_more_iterations_joins_the_same_settings(tmp_path):
    """RAFT-like: lr {1e-5, 1e-4, 1e-3} x 3 seeds, 3 iterations, best at the last: flagged. Extended as
    the bracketing rule says (the same jobs with iterations=5 at lr 1e-4, whose first three
    evaluations repeat the 3-iteration runs'), the choice moves inside the grid (iteration 4), each
    (setting, seed, iteration) counted once."""
    report = {"tune": "lr iteration", "tune_by": "val_win_rate_vs_sft"}
    curve = {"1e-05": [0.52, 0.53, 0.54, 0.55, 0.56], "0.0001": [0.55, 0.57, 0.60, 0.62, 0.61], "0.001": [0.3] * 5}

    def job(i: int, lr: str, seed: int, iterations: int | None):
        history = [{"iteration": 0, "win_rate_vs_sft": 0.5, "val_win_rate_vs_sft": 0.5}]
        for it in range(1, (iterations or 3) + 1):
            val = curve[lr][it - 1] + 0.001 * seed
            history.append({"iteration": it, "win_rate_vs_sft": val - 0.01, "val_win_rate_vs_sft": val})
        overrides = [f"lr={lr}", f"seed={seed}"] + ([f"iterations={iterations}"] if iterations else [])
        job = tmp_path / "sweep" / ("ext" if iterations else "base") / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        config = {"seed": seed, "experiment_name": "raft", "report": report}
        (job / "summary.json").write_text(json.dumps({"config": config, "history": history, "final": history[-1]}))

    for i, (lr, seed) in enumerate((lr, s) for lr in curve for s in range(3)):
        job(i, lr, seed, None)
    base = write_report(tmp_path / "sweep" / "base", tmp_path / "base" / "results.md").read_text()
    assert "| (every job) | lr=0.0001 iteration=3 | 0.601 ± 0.002 |" in base
    assert "**The grid does not bracket the choice** for the runs (iteration)" in base
    for seed in range(3):
        job(seed, "0.0001", seed, 5)
    extended = write_report(tmp_path / "sweep", tmp_path / "ext" / "results.md").read_text()
    assert "| (every job) | lr=0.0001 iteration=4 | 0.621 ± 0.002 |" in extended
    assert "does not bracket" not in extended
    assert "| (every job) | 3 | 0.611 ± 0.002 |" in extended  # iteration 4's test metric, 3 seeds


def test_a_claim_can_name_its_own_metric_and_the_start_policy(tmp_path):
    """ "A > SFT on accuracy_greedy": a trained setting against each seed's iteration 0, in the
    claim's own metric. Greedy accuracy rises by 0.05 + seed/100 on 5 seeds (reproduced); sampled
    accuracy moves by ±0.01 (not decided); Holm over the two claims."""
    report = {
        "metric": "accuracy_sampled",
        "claims": ["trained > SFT on accuracy_greedy", "trained > SFT", "trained > SFT on no_such_metric"],
    }
    for seed in range(5):
        start = {"accuracy_greedy": 0.4 + seed / 50, "accuracy_sampled": 0.3}
        final = {
            "accuracy_greedy": start["accuracy_greedy"] + 0.05 + seed / 100,
            "accuracy_sampled": 0.3 + (-1) ** seed / 100,
        }
        write_job(tmp_path, seed, ["lr=1e-5"], seed, final, start, report)
    greedy, sampled, missing = claims(collect(tmp_path), "accuracy_sampled")
    assert greedy["diff"].mean == pytest.approx(0.07) and greedy["diff"].n == 5
    assert greedy["verdict"] == "reproduced" and greedy["p_holm"] == pytest.approx(2 * greedy["diff"].p)
    assert sampled["diff"].mean == pytest.approx(0.002) and sampled["verdict"] == "inconclusive"
    assert missing["diff"] is None and missing["verdict"] == "inconclusive"


@pytest.mark.parametrize(
    ("sd", "half_width", "expected"),
    [  # from the t table: t(8) = 2.306, t(9) = 2.262, t(28) = 2.048, t(29) = 2.045
        (0.1, 2.262 * 0.1 / math.sqrt(10) + 1e-4, 10),  # n=9 gives 2.306 * 0.1 / 3 = 0.0769: too wide
        (0.1036, 0.04, 29),  # n=28: 2.052 * 0.1036 / sqrt(28) = 0.0402; n=29: 2.048 * 0.1036 / sqrt(29) = 0.0394
        (0.0, 0.01, 2),
    ],
)
def test_seeds_for_a_half_width_is_the_fewest_that_reach_it(sd, half_width, expected):
    from larpo.report.stats import seeds_for

    assert seeds_for(sd, half_width) == expected


def test_report_prints_the_seeds_each_claim_needs(tmp_path):
    """The synthetic sweep's per-seed differences have SD 0.00255 (gains 0.021, 0.019, 0.024,
    0.018, 0.023); a ±0.001 interval needs 28 seeds (t(27) = 2.052: 2.052 * 0.00255 / sqrt(28) =
    0.000989), the CLI prints it, and a half-width that is not positive is one line."""
    synthetic_sweep(tmp_path / "sweep")
    md = write_report(tmp_path / "sweep", tmp_path / "out" / "results.md", half_width=0.001).read_text()
    assert "## Seeds for a 95% half-width of ±0.001" in md
    assert "| objective=listmle > objective=pairwise | 5 | 0.0025 | ±0.0032 | **28** |" in md
    assert "Seeds for" not in write_report(tmp_path / "sweep", tmp_path / "plain" / "results.md").read_text()
    cli = [sys.executable, "-m", "larpo.report.cli", str(tmp_path / "sweep"), "--out", str(tmp_path / "c" / "r.md")]
    out = subprocess.run([*cli, "--half-width", "0.004"], capture_output=True, text=True, check=True).stdout
    assert "| objective=listmle > objective=pairwise | 5 | 0.0025 | ±0.0032 | **5** |" in out  # n=4: 0.00406
    bad = subprocess.run([*cli, "--half-width", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--half-width=0.0: must be > 0" in bad.stderr
