"""Nothing computed twice: the SFT policy's evaluation cached per (policy, evaluation config) and
restored exactly; a sweep job whose config equals a finished run's (another experiment's) reuses
its results, the report says so, and `reuse=false` trains it again."""

import json
import logging
import os
from pathlib import Path

import pytest
from helpers.configs import MICRO, compose_cfg
from helpers.env import sweep_cli
from omegaconf import OmegaConf, open_dict

from larpo.evaluation import cache as eval_cache
from larpo.report.cli import write_report
from larpo.run import jobs
from larpo.run.fit import run


def test_the_evaluation_key_follows_what_the_evaluation_depends_on(tmp_path):
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "model.safetensors").write_bytes(b"x" * 10)
    prompts = ["1+1=", "2+2="]
    cfg = compose_cfg(["run_dir=."], tmp_path)
    base = eval_cache.cache_path(cfg, str(policy), prompts)
    assert base.parent == Path(cfg.model.cache_dir).expanduser() / "evaluations"

    def key(overrides=(), prompts=prompts, touch=False):
        c = compose_cfg(["run_dir=.", *overrides], tmp_path)
        if touch:
            (policy / "model.safetensors").write_bytes(b"y" * 11)  # a retrained policy
        return eval_cache.cache_path(c, str(policy), prompts)

    # what the SFT evaluation does not depend on keeps the key
    assert key(["data.prompts_per_iteration=7", "eval.every_iteration=false", "progress=false", "lr=1"]) == base
    # what it depends on changes it
    for changed in (["eval.samples=3"], ["eval.sharpen=[]"], ["seed=1"], ["generator.max_new_tokens=5"]):
        assert key(changed) != base, changed
    assert key(prompts=["1+1="]) != base
    assert key(touch=True) != base
    assert key(["eval.cache=false"]) is None
    # the device and the thread count change floating-point sums: part of the key
    with_hw = eval_cache.cache_path(cfg, str(policy), prompts, {"device": "cpu", "threads": 2})
    assert with_hw != base and with_hw != eval_cache.cache_path(
        cfg, str(policy), prompts, {"device": "cpu", "threads": 1}
    )


def test_reusable_configs_ignore_where_and_which_experiment_only():
    config = {
        "seed": 0,
        "lr": 1e-4,
        "run_dir": "a",
        "progress": True,
        "experiment_name": "table3_objectives",
        "report": {"claims": ["x > y"]},
        "eval": {"samples": 8, "cache": True},
        "generator": {"max_new_tokens": 8, "progress": True},
        "model": {"cache_dir": "/c"},
    }
    other = {
        **config,
        "run_dir": "b",
        "progress": False,
        "experiment_name": "fig3b_temperature",
        "report": {"claims": []},
        "eval": {"samples": 8, "cache": False},
        "generator": {"max_new_tokens": 8, "progress": False},
    }
    assert jobs.reusable(config) == jobs.reusable(other)
    assert jobs.index_path(config) == jobs.index_path(other)
    assert jobs.index_path(config) != jobs.index_path({**config, "lr": 2e-4})
    assert jobs.index_path(config) != jobs.index_path({**config, "eval": {"samples": 4, "cache": True}})


@pytest.mark.slow
def test_a_cached_sft_evaluation_gives_the_same_run(tmp_path, cache_dir, caplog):
    """The same micro run three times: the first evaluates the SFT policy and caches it, the second
    reads it (its log says so), the third (`eval.cache=false`) computes it again. All three
    histories, the SFT row and every trained row, are equal to the last digit."""

    def micro_run(name, *overrides):
        # eval.temperature=0.97: an evaluation config no other test uses, so the first run is cold
        base = [*MICRO, f"model.cache_dir={cache_dir}", "iterations=1", "eval.temperature=0.97"]
        cfg = compose_cfg([*base, *overrides], tmp_path)
        with open_dict(cfg):
            cfg.run_dir = str(tmp_path / name)
        return run(cfg)

    def cached():
        return set((cache_dir / "evaluations").glob("sft-*.json"))

    caplog.set_level(logging.INFO, logger="larpo")
    before = cached()
    cold = micro_run("cold")
    written = cached() - before
    assert len(written) == 1  # the cold run computed and stored its SFT evaluation
    warm = micro_run("warm")
    fresh = micro_run("fresh", "eval.cache=false")
    assert cached() - before == written  # the warm run read it; eval.cache=false stored nothing
    assert warm["history"] == cold["history"] == fresh["history"]
    assert len(cold["history"]) == 2 and cold["history"][0]["iteration"] == 0
    read = [r.getMessage() for r in caplog.records if "SFT evaluation from the cache" in r.getMessage()]
    assert len(read) == 1 and str(next(iter(written))) in read[0]  # the warm run only


@pytest.mark.slow
def test_a_job_equal_to_another_experiments_run_reuses_it(tmp_path, cache_dir):
    """Sweep A runs pairwise and listmle; sweep B (another experiment name) runs listmle and
    contrastive: B's listmle job reuses A's (no training: no checkpoint), its contrastive job
    trains; B's report lists the reused row. With reuse=false the same job trains again."""
    base = [*MICRO, f"model.cache_dir={cache_dir}", "iterations=1", "beta=0.37", "eval.sharpen=[]"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sweep_cli(a, *base, "experiment_name=first", "objective=pairwise,listmle")
    sweep_cli(b, *base, "experiment_name=second", "objective=listmle,contrastive")
    first = json.loads((a / "1" / "summary.json").read_text())
    reused = json.loads((b / "0" / "summary.json").read_text())
    assert reused["reused_from"] == str((a / "1").resolve())
    assert reused["history"] == first["history"] and reused["final"] == first["final"]
    assert reused["config"]["experiment_name"] == "second" and reused["config"]["run_dir"] == str(b / "0")
    assert not (b / "0" / "checkpoints").exists()  # nothing was trained
    trained = json.loads((b / "1" / "summary.json").read_text())
    assert "reused_from" not in trained and (b / "1" / "checkpoints" / "last.ckpt").exists()

    report = write_report(b).read_text()
    assert "## Reused runs" in report and "1 of 2 jobs" in report and str((a / "1").resolve()) in report
    assert "reused_from" in (b / "runs.csv").read_text().splitlines()[0]

    sweep_cli(c, *base, "experiment_name=third", "objective=listmle", "reuse=false")
    again = json.loads((c / "0" / "summary.json").read_text())
    assert "reused_from" not in again and (c / "0" / "checkpoints" / "last.ckpt").exists()
    assert again["history"] == first["history"]  # the same config trains to the same numbers


def test_the_same_run_in_two_paper_experiments_has_one_key(tmp_path):
    """Table 3's pairwise (candidate_list.size null: as many as it keeps, 2) is Table 4's default
    list (size 2) and Figure 3b's T=1.0; Table 3's contrastive (null: 4) is Figure 3c's size 4
    (keep.negatives null: the other 3). Other settings differ."""

    def key(experiment, *overrides):
        cfg = compose_cfg([f"experiment={experiment}", "run_dir=.", "seed=0", *overrides], tmp_path)
        return jobs.index_path(OmegaConf.to_container(cfg, resolve=True))

    pairwise = key("table3_objectives", "objective=pairwise")
    assert (
        pairwise == key("table4_memorization", "candidate_list=default") == key("fig3b_temperature", "temperature=1.0")
    )
    assert key("table3_objectives", "objective=contrastive") == key("fig3c_list_size", "candidate_list.size=4")
    assert pairwise != key("fig3b_temperature", "temperature=0.5")
    assert key("fig3c_list_size", "candidate_list.size=6") != key("fig3c_list_size", "candidate_list.size=4")
    assert pairwise != key("table3_objectives", "objective=pairwise", "seed=1")


def test_larpo_processes_share_the_cores(monkeypatch, tmp_path, cache_dir):
    """Idle OpenMP threads of parallel sweep jobs sleep (set before torch loads, unless the user
    chose; every case in test_config), and `threads`
    sets the torch threads of a run; a bad value stops at compose."""
    import torch

    from larpo.cli import share_cores
    from larpo.config.rules import check
    from larpo.fields import ConfigError
    from larpo.run.build import build

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    share_cores(["-m", "objective=a,b", "hydra/launcher=local"])  # a sweep's parallel jobs
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    share_cores(["-m", "objective=a,b", "hydra/launcher=local"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice wins

    with pytest.raises(ConfigError, match="threads"):
        check(compose_cfg(["threads=0", "run_dir=."]))
    before = torch.get_num_threads()
    try:
        cfg = compose_cfg([*MICRO, f"model.cache_dir={cache_dir}", "threads=1", "iterations=1"], tmp_path)
        build(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
