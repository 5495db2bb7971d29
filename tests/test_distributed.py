"""Data-parallel sampling for real: 2 CPU processes with the gloo backend under Lightning's DDP.

Each rank generates and scores its share of the prompts and the pool is gathered. With a prompt
count that does not divide evenly, the pool must hold exactly what one process produces.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import MICRO

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}


def pool(run_dir):
    rows = [json.loads(line) for line in (run_dir / "pool" / "iteration_1.jsonl").read_text().splitlines()]
    return {r["prompt"]: r for r in rows}


def run_cli(run_dir, cache_dir, *overrides):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "larpo",
            *MICRO,
            f"model.cache_dir={cache_dir}",
            "iterations=1",
            "data.prompts_per_iteration=13",  # 13 prompts over 2 ranks: uneven
            "generator.batch_size=8",  # 2 prompts x 4 samples per generate chunk: 7 chunks
            "eval.every_iteration=false",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_ddp_on_two_gloo_processes_gives_the_single_process_pool(tmp_path, cache_dir):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_cli(single, cache_dir)
    out = run_cli(
        ddp,
        cache_dir,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
    )
    assert "gloo" in out.stderr + out.stdout or "distributed_backend=gloo" in out.stderr
    a, b = pool(single), pool(ddp)
    assert len(a) == 13 and set(a) == set(b)  # no prompt dropped or duplicated
    for prompt, row in a.items():
        other = b[prompt]
        for key in ("responses", "rewards", "sources", "kept", "sampled_in"):
            assert row[key] == other[key], (prompt, key)
        assert other.get("ref_logps") == pytest.approx(row.get("ref_logps"), abs=1e-5)
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["config"]["trainer"]["strategy"] == "ddp"
    assert not (tmp_path / "config.yaml").exists()  # rank 1 wrote nothing outside the run
