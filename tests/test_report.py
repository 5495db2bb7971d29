"""larpo-report on a real 2-job sweep: the table it writes, failed jobs, and reading only JSON."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import MICRO, compose_cfg

from larpo.report import mean_ci

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def test_mean_ci_is_student_t():
    m, h = mean_ci([0.5, 0.7])
    assert m == pytest.approx(0.6) and h == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2))
    assert mean_ci([0.4]) == (0.4, 0.0)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.slow
def test_report_of_a_sweep(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "larpo",
            "-m",
            *MICRO,
            f"model.cache_dir={cache_dir}",
            "iterations=1",
            "seed=0,1",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    finals = [
        __import__("json").loads((sweep / str(i) / "summary.json").read_text())["final"] for i in (0, 1)
    ]

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


EXPERIMENTS = [
    "table2_baselines",
    "table3_objectives",
    "table4_memorization",
    "fig3a_negatives",
    "fig3b_temperature",
    "fig3c_list_size",
]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_sweeps_seeds_and_has_a_smoke_size(name):
    from hydra import compose, initialize_config_module

    with initialize_config_module("larpo.conf", version_base="1.3"):
        full = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
        smoke = compose("train", overrides=[f"experiment={name}", "size=smoke"], return_hydra_config=True)
    params = full.hydra.sweeper.params
    assert len(str(params.seed).split(",")) >= 3 and len(params) >= 2
    assert full.experiment_name == name and full.logger.group == name  # W&B groups the sweep
    assert str(smoke.hydra.sweeper.params.seed) == "0" and smoke.data.prompts_per_iteration < 100
    assert full.data.prompts_per_iteration == 1024 and not full.eval.every_iteration


def test_method_sets_the_objective_and_the_protocol():
    cfg = compose_cfg(["method=offline_kto"])
    assert (cfg.objective._target_, cfg.offline, cfg.candidate_list.size) == ("larpo.objectives.kto", True, 5)
    cfg = compose_cfg(["experiment=table2_baselines", "method=larpo_listmle"])
    assert (cfg.objective._target_, cfg.offline, cfg.candidate_list.size) == (
        "larpo.objectives.listmle",
        False,
        10,
    )


@pytest.mark.slow
def test_smoke_experiment_sweep_and_its_report(tmp_path, cache_dir):
    """`larpo -m experiment=table3_objectives size=smoke` with two objectives, in parallel through
    the joblib launcher preset, then `larpo-report` on it: the table and the figure."""
    sweep = tmp_path / "sweep"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "larpo",
            "-m",
            "experiment=table3_objectives",
            "size=smoke",
            "objective=pairwise,listmle",
            "hydra/launcher=local",
            f"model.cache_dir={cache_dir}",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summaries = {}
    for job in (0, 1):
        s = __import__("json").loads((sweep / str(job) / "summary.json").read_text())
        summaries[s["config"]["objective"]["_target_"].rsplit(".", 1)[1]] = s
    # the paper's lists (candidate_list.size=null): pairwise samples 2, listmle 4
    assert summaries["pairwise"]["config"]["candidate_list"]["size"] is None
    assert [h["iteration"] for h in summaries["listmle"]["history"]] == [0, 2]  # SFT and final only

    out_md = tmp_path / "docs" / "results.md"
    report = subprocess.run(
        [str(Path(sys.executable).parent / "larpo-report"), str(sweep), "--out", str(out_md)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    text = out_md.read_text()
    assert text.startswith("# Results: table3_objectives")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"SFT (iteration 0)", "objective=pairwise", "objective=listmle"} <= set(rows)
    for name, s in summaries.items():
        cells = [c.strip() for c in rows[f"objective={name}"].strip("|").split("|")]
        assert cells[1] == "1"  # one seed
        assert float(cells[2].split("±")[0]) == pytest.approx(s["final"]["win_rate_vs_sft"], abs=5e-4)
    sft = [c.strip() for c in rows["SFT (iteration 0)"].strip("|").split("|")]
    assert float(sft[5].split("±")[0]) == pytest.approx(
        summaries["pairwise"]["history"][0]["accuracy_sampled"], abs=5e-4
    )
    png = out_md.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "![table3_objectives](results.png)" in text


def test_launcher_presets_compose():
    from hydra import compose, initialize_config_module

    with initialize_config_module("larpo.conf", version_base="1.3"):
        local = compose("train", overrides=["hydra/launcher=local"], return_hydra_config=True)
        slurm = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert "JoblibLauncher" in local.hydra.launcher._target_ and local.hydra.launcher.n_jobs == 2
    assert "SlurmLauncher" in slurm.hydra.launcher._target_ and slurm.hydra.launcher.gpus_per_node == 1
