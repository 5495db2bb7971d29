"""Experiment files, Table 2's methods and the launcher presets: every experiment composes,
sweeps seeds and has a smoke size; a smoke sweep runs and reports; submitit_local gives the basic
launcher's summaries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.configs import CONF, MICRO, compose_cfg
from helpers.env import ENV, sweep_cli

from larpo.report.cli import write_report


def _sweeps():

    return sorted(f.stem for f in (Path(CONF) / "experiment").glob("*.yaml") if "experiment_name:" in f.read_text())


PREREGISTERED = {
    "ranking_signal_arithmetic",
    "ranking_signal_digits",
    "ranking_signal_noisy",
    "regime_a_confirm",
    "smollm2_confirm",
    "smollm2_objectives",
    "smollm2_decisive",
}
EXPERIMENTS = _sweeps()  # every experiment file that is a sweep, so a new one is tested at once


def test_the_paper_experiments_are_all_there():
    paper = {
        "table2_baselines",
        "table3_objectives",
        "table4_memorization",
        "fig3a_negatives",
        "fig3b_temperature",
        "fig3c_list_size",
    }
    assert paper | {"objectives_extended", "greedy_tradeoff"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_sweeps_seeds_and_has_a_smoke_size(name):
    from hydra import compose, initialize_config_module

    with initialize_config_module("larpo.conf", version_base="1.3"):
        full = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
        smoke = compose("train", overrides=[f"experiment={name}", "size=smoke"], return_hydra_config=True)
    params = full.hydra.sweeper.params
    claims = full.report.get("claims") or []
    # settings and seeds, compared against a baseline; or one setting, every claim about it against SFT
    one_setting = bool(claims) and all(c.split(">")[0].strip() == "trained" for c in claims)
    assert (len(params) >= 2 and full.report.baseline) or (one_setting and list(params) == ["seed"])
    assert full.experiment_name == name and full.logger.group == name  # W&B groups the sweep
    assert str(smoke.hydra.sweeper.params.seed) == "0" and smoke.data.prompts_per_iteration < 100
    if full.report.get("claims") and name in PREREGISTERED:  # chosen in advance: the metric and at least 5 seeds
        assert full.report.metric and len(str(params.seed).split(",")) >= 5
        assert full.candidate_list.size == 4  # every objective on the same k=4 lists
        if name.startswith("smollm2_"):  # the real model's protocol: the preset's lists, the 200 test problems
            assert full.data.eval_prompts >= 200 and full.eval.prompts is None
        else:
            assert full.data.prompts_per_iteration == 1024 and not full.eval.every_iteration
    elif full.report.get("claims"):  # the paper's claims protocol: 5 seeds, half-size prompts, evaluation at the end
        assert str(params.seed) == "0,1,2,3,4"
        assert full.data.prompts_per_iteration == 1024 and not full.eval.every_iteration
        assert full.lr == 1e-4 or (full.report.tune == "lr" and "lr" in params)  # pinned, or chosen per setting
    if full.report.tune:  # chosen on a validation split, disjoint from the test prompts, among swept values
        assert full.eval.validation > 0 and full.report.tune_by.startswith("val_")
        for key in full.report.tune.split():  # `iteration`: the evaluation after each iteration
            assert key in params or (key == "iteration" and full.eval.every_iteration), key


def test_method_sets_the_objective_and_the_protocol():
    cfg = compose_cfg(["method=offline_kto"])
    assert (cfg.objective._target_, cfg.offline, cfg.candidate_list.size) == ("larpo.objectives.baselines.kto", True, 5)
    cfg = compose_cfg(["experiment=table2_baselines", "method=larpo_listmle"])
    assert (cfg.objective._target_, cfg.offline, cfg.candidate_list.size) == (
        "larpo.objectives.ranking.listmle",
        False,
        10,
    )


@pytest.mark.slow
def test_smoke_experiment_sweep_and_its_report(tmp_path, cache_dir):
    """`larpo -m experiment=table3_objectives size=smoke` with two objectives, in parallel through
    the joblib launcher preset, then `larpo-report` on it: the table and the figure."""
    sweep = tmp_path / "sweep"
    sweep_cli(
        sweep,
        "experiment=table3_objectives",
        "size=smoke",
        "objective=pairwise,listmle",
        "hydra/launcher=local",
        f"model.cache_dir={cache_dir}",
    )
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
    first_table = text.split("## Paired")[0]  # the per-setting table (the paired one repeats the labels)
    rows = {line.split("|")[1].strip(): line for line in first_table.splitlines() if line.startswith("| ")}
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


@pytest.mark.slow
def test_submitit_local_launcher_gives_the_basic_launchers_summaries(tmp_path, cache_dir):
    """The SLURM launcher's code path (submitit, pickled jobs) without SLURM: a 2-job smoke sweep
    gives the same per-job summaries as Hydra's basic launcher."""
    finals = {}
    for launcher in ("basic", "submitit_local"):
        sweep = tmp_path / launcher
        sweep_cli(
            sweep,
            *MICRO,
            f"model.cache_dir={cache_dir}",
            "iterations=1",
            "objective=pairwise,listmle",
            f"hydra/launcher={launcher}",
            "reuse=false",  # the second launcher must train, not reuse the first's runs
        )
        for job in (0, 1):
            s = json.loads((sweep / str(job) / "summary.json").read_text())
            finals[launcher, s["config"]["objective"]["_target_"]] = (s["history"], s["reference_forwards"])
    assert len(finals) == 4
    for target in ("larpo.objectives.ranking.pairwise", "larpo.objectives.ranking.listmle"):
        assert finals["submitit_local", target] == finals["basic", target]
    assert list((tmp_path / "submitit_local" / ".submitit").iterdir())  # it really went through submitit


@pytest.mark.slow
def test_an_interrupted_sweep_continues_where_it_stopped(tmp_path, cache_dir):
    """SIGINT to a 3-job sweep once the first job has finished and the second has a checkpoint;
    the same command again skips the first (its summary untouched), resumes the second from its
    checkpoint, runs the third; the report counts each job once."""
    import signal
    import time

    sweep = tmp_path / "sweep"
    args = [*MICRO, f"model.cache_dir={cache_dir}", "iterations=4", "objective=pairwise,contrastive,listmle"]
    args.append("reuse=false")  # every job trains here, whatever other tests ran
    command = [sys.executable, "-m", "larpo", "-m", *args, f"hydra.sweep.dir={sweep}"]
    log = tmp_path / "first.log"  # a file, not a pipe: an unread pipe that fills up blocks the sweep
    with open(log, "w") as out:
        # the sweep gets Ctrl-C's default disposition: a suite started in the background (CI) has
        # SIGINT ignored, and every child inherits that, so the signal would never arrive
        first = subprocess.Popen(
            command,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for _ in range(6000):
            if (sweep / "0" / "summary.json").is_file() and (sweep / "1" / "checkpoints" / "last.ckpt").is_file():
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        first.wait(timeout=300)
    err = log.read_text()
    assert first.returncode == 130, err[-2000:]
    assert "larpo: stopped. Continue this sweep with:" in err and f"hydra.sweep.dir={sweep}" in err
    assert "Traceback" not in err
    done = (sweep / "0" / "summary.json").read_text()
    assert not (sweep / "1" / "summary.json").exists()

    again = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (sweep / "0" / "summary.json").read_text() == done  # not run again
    assert "resuming from" in (sweep / "1" / "larpo.log").read_text()
    histories = [json.loads((sweep / str(j) / "summary.json").read_text())["history"] for j in range(3)]
    assert [[h["iteration"] for h in hs][-1] for hs in histories] == [4, 4, 4]
    report = write_report(sweep).read_text()
    table = report.split("## Paired")[0]  # the settings table: one row per setting, one seed each
    for objective in ("pairwise", "contrastive", "listmle"):
        assert table.count(f"| objective={objective} | 1 |") == 1
    assert "Duplicate" not in report


def test_regime_a_confirm_is_written_from_the_choices_of_stage_1(tmp_path):
    """experiments/regime_a_confirm.py turns the two stage-1 reports' choices.json into one method
    option per objective (its chosen lr, beta, iterations) and the confirmation sweep (those four
    methods on seeds 5-9, stage 1's protocol, claims and metric)."""
    from omegaconf import OmegaConf

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
    try:
        from regime_a_confirm import main
    finally:
        sys.path.pop(0)

    def choice(setting, **chosen):
        return {"setting": setting, "chosen": chosen, "score": {"mean": 0.6, "ci95": 0.01, "seeds": 5},
                "at_an_end": ["iteration"], "overrides": "unused"}  # fmt: skip

    results = tmp_path / "results"
    picks = {
        "regime_a_bracketed": [
            choice("objective=pairwise", lr="1e-05", beta="0.3", iteration="2"),
            choice("objective=contrastive", lr="3e-05", beta="8.1", iteration="7"),
            choice("objective=listmle", lr="0.0001", beta="0.9", iteration="4"),
        ],
        "regime_a_bracketed_raft": [choice("", lr="0.0003", iteration="9")],
    }
    for name, rows in picks.items():
        (results / name).mkdir(parents=True)
        (results / name / "choices.json").write_text(json.dumps({"settings": rows}))
    conf = tmp_path / "conf"
    (conf / "method").mkdir(parents=True)
    (conf / "experiment").mkdir()
    main(["--results", str(results), "--conf", str(conf)])
    expected = {
        "pairwise": (1e-5, 0.3, 2),
        "contrastive": (3e-5, 8.1, 7),
        "listmle": (1e-4, 0.9, 4),
        "raft": (3e-4, None, 9),
    }
    # read as written (the package ships its own regime_a_* files, which a search path cannot shadow)
    for name, (lr, beta, iterations) in expected.items():
        method = OmegaConf.load(conf / "method" / f"regime_a_{name}.yaml")
        assert method.defaults == [{"override /objective": name}]
        assert (method.lr, method.iterations, method.get("beta")) == (lr, iterations, beta)
    cfg = OmegaConf.load(conf / "experiment" / "regime_a_confirm.yaml")
    assert (cfg.sft_weight, cfg.reference, cfg.candidate_list.size, cfg.eval.every_iteration) == (
        0.0,
        "initial",
        4,
        False,
    )
    params = cfg.hydra.sweeper.params
    assert params.seed == "5,6,7,8,9" and params.method.split(",") == [f"regime_a_{n}" for n in expected]
    assert cfg.report.metric == "exact_win_rate_vs_sft" and len(cfg.report.claims) == 4
    assert "method=regime_a_listmle > method=regime_a_raft" in cfg.report.claims
