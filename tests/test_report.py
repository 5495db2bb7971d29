"""larpo-report on a real 2-job sweep: the table it writes, failed jobs, and reading only JSON."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import MICRO

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
    row = next(line for line in text.splitlines() if line.startswith("| ") and "| 2 |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    mean, half = (float(x) for x in cells[2].split("±"))  # win_rate_vs_sft
    m, h = mean_ci([f["win_rate_vs_sft"] for f in finals])
    assert mean == pytest.approx(m, abs=5e-4) and half == pytest.approx(h, abs=5e-4)
    assert "## Missing or failed jobs" in text and "objective=contrastive" in text
    assert not marker.exists()
