"""Reliability: resume after SIGKILL, config errors through the real CLI, bad data, determinism, safety."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.configs import CONF, MICRO
from helpers.env import ENV

from larpo.candidates import read_pool
from larpo.fields import ConfigError
from larpo.run.build import build
from larpo.run.fit import fit


def larpo(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "larpo", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def micro_args(cache_dir, *extra):
    return [*MICRO, f"model.cache_dir={cache_dir}", *extra]


# --- resume ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped_and_ends_the_same(tmp_path, cache_dir):
    args = micro_args(cache_dir, "iterations=3", "epochs_per_iteration=2", "data.prompts_per_iteration=160")
    whole = larpo(*args, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-2000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "larpo", *args, f"hydra.run.dir={killed_dir}"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed_dir / "pool" / "iteration_2.jsonl").exists():  # iteration 2 has begun
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "summary.json").exists()  # it really died mid-run
    assert not (killed_dir / "pool" / "iteration_3.jsonl").exists()

    resumed = larpo(f"resume={killed_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((tmp_path / "whole" / "summary.json").read_text())
    b = json.loads((killed_dir / "summary.json").read_text())
    assert [h["iteration"] for h in b["history"]] == [0, 1, 2, 3]  # no iteration lost or repeated
    for key, value in a["final"].items():  # stated tolerance: 1e-6
        assert b["final"][key] == pytest.approx(value, abs=1e-6), key
    for s in (1, 2, 3):  # the candidate pools are the same, earlier ones intact
        assert (killed_dir / "pool" / f"iteration_{s}.jsonl").read_text() == (
            tmp_path / "whole" / "pool" / f"iteration_{s}.jsonl"
        ).read_text()
    for summary in (a, b):  # every second in a named phase, none negative, across the resume too
        timing = summary["timing"]
        assert all(v >= 0 for v in timing.values())
        phases = sum(v for k, v in timing.items() if k != "total")
        assert phases == pytest.approx(timing["total"], abs=0.01)
        assert {"sft", "generation", "scoring", "reference", "training", "evaluation", "other"} <= set(timing)


@pytest.mark.slow
def test_sigterm_stops_cleanly_prints_the_resume_command_and_the_run_resumes(tmp_path, cache_dir):
    """A cluster preempting a job sends SIGTERM: larpo stops with exit code 130, prints the exact
    `larpo resume=<dir>` command, and that command finishes the run."""
    run_dir = tmp_path / "preempted"
    args = micro_args(cache_dir, "iterations=2", "epochs_per_iteration=2", "data.prompts_per_iteration=160")
    proc = subprocess.Popen(
        [sys.executable, "-m", "larpo", *args, f"hydra.run.dir={run_dir}"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"larpo: stopped. Continue this run with:\n  larpo resume={run_dir}\n" in stderr
    assert "Traceback" not in stderr and not (run_dir / "summary.json").exists()
    out = larpo(f"resume={run_dir}")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [h["iteration"] for h in summary["history"]] == [0, 1, 2]


def test_after_a_sigterm_any_exit_of_the_run_is_a_stop(monkeypatch):
    """Lightning stops its loop after a SIGTERM with `SIGTERMException`, a SystemExit with no code;
    where a library swallowed larpo's interrupt that is what reaches the CLI (seen on CI: exit 0)."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from larpo import cli

    monkeypatch.setattr(cli, "_sigterm_received", False)
    assert not cli.stopped_early(SIGTERMException()) and not cli.stopped_early(SystemExit(0))
    assert cli.stopped_early(SystemExit(1)) and cli.stopped_early(KeyboardInterrupt())
    previous = signal.signal(signal.SIGTERM, cli._on_sigterm)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; the sleep is interrupted
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert cli.stopped_early(SIGTERMException())


@pytest.mark.slow
def test_a_run_prints_no_known_third_party_noise_and_says_where_wandb_is(tmp_path, cache_dir):
    out = larpo(
        *micro_args(
            cache_dir, "iterations=1", "logger=wandb", "reward_model=learned", "reward_model.pairs=256", "progress=true"
        ),
        f"hydra.run.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    console = out.stdout + out.stderr
    for noise in ("litlogger", "LeafSpec", "anonymous setting", "LOAD REPORT", "logging interval", "Loading weights"):
        assert noise not in console, noise
    assert f"upload it with: wandb sync {tmp_path}/wandb/offline-run-" in console
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["timing"]["reward_model"] > 0  # training the reward model is a phase of its own
    assert summary["timing"]["other"] >= 0


# --- config validation through the CLI --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["iterations=0"], "larpo: iterations=0: must be >= 1; e.g. iterations=3"),
        (
            ["reward_model=sequence_classifier", "reward_model.path=/nonexistent/reward-model"],
            "larpo: reward_model.path=/nonexistent/reward-model: does not exist; give an existing path",
        ),
        (
            ["data=lists", "data.path=/nonexistent/lists.jsonl"],
            "larpo: data.path=/nonexistent/lists.jsonl: does not exist; give an existing path",
        ),
    ],
)
def test_bad_configs_fail_early_with_the_fix(overrides, message, tmp_path):
    start = time.time()
    out = larpo(*overrides, f"hydra.run.dir={tmp_path}", "model.cache_dir=/nonexistent/cache")
    assert out.returncode == 2
    assert out.stderr.startswith(message) and len(out.stderr.strip().splitlines()) == 1
    assert not Path("/nonexistent/cache").exists()  # failed before building anything
    assert time.time() - start < 60


@pytest.mark.slow
def test_a_reward_model_that_cannot_load_fails_before_sft(tmp_path):
    (tmp_path / "rm").mkdir()  # exists, but holds no tokenizer
    out = larpo(
        "reward_model=sequence_classifier",
        f"reward_model.path={tmp_path / 'rm'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"model.cache_dir={tmp_path / 'cache'}",
    )
    assert out.returncode == 2
    assert f"larpo: reward_model.path={tmp_path / 'rm'}: its tokenizer cannot be loaded" in out.stderr
    assert not (tmp_path / "cache").exists()


def test_a_bad_value_leaves_no_run_directory_behind(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "larpo", "iterations=0"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 2 and "larpo: iterations=0: must be >= 1" in out.stderr
    assert not (tmp_path / "outputs").exists()  # checked before Hydra creates the run directory


@pytest.mark.slow
def test_memory_previous_with_one_iteration_only_warns(tmp_path, cache_dir):
    out = larpo(*micro_args(cache_dir, "candidate_list.memory=previous", "iterations=1"), f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "candidate_list.memory=previous with iterations=1 is the same as current" in out.stderr
    assert (tmp_path / "summary.json").exists()


# --- bad data ---------------------------------------------------------------------------------------


def write_lines(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def good(prompt, responses, rewards):
    return {
        "prompt": prompt,
        "responses": responses,
        "rewards": rewards,
        "iteration": 0,
        "temperatures": [1.0] * len(responses),
    }


def test_pool_reader_skips_malformed_lines_and_names_them(tmp_path):
    path = tmp_path / "lists.jsonl"
    write_lines(
        path,
        [
            good("1+1=", ["2", "3"], [1.0, 0.5]),
            "",
            "{not json",
            good("2+2=", ["4"], [1.0]),
            {"prompt": "3+3="},
            {"prompt": "4+4=", "responses": ["8", "9"], "rewards": [1.0]},
        ],
    )
    lists, skipped = read_pool(path)
    assert [lst.prompt for lst in lists] == ["1+1=", "2+2="]
    assert skipped == [  # line numbers and reasons; the blank line 2 is not an error
        {
            "line": 3,
            "reason": "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        },
        {"line": 5, "reason": "missing responses, rewards"},
        {"line": 6, "reason": "rewards must be a list of 2 numbers, one per response"},
    ]


def test_every_kind_of_bad_line_is_skipped_and_the_good_lines_train(micro, tmp_path):
    path = tmp_path / "lists.jsonl"
    rows = [good(f"{a}+{a}=", [str(2 * a), str(2 * a + 1), str(2 * a + 3)], [1.0, 0.5, 0.25]) for a in range(10, 30)]
    bad = {
        21: ("this line is not JSON", "not JSON"),
        22: ('["a", "list"]', "not a JSON object (a list)"),
        23: (good("5+5=", ["10", "", "12"], [1.0, 0.5, 0.3]), 'responses must be non-empty strings, got ""'),
        24: (good("5+6=", ["11", None], [1.0, 0.5]), "responses must be non-empty strings, got null"),
        25: (
            json.dumps(good("6+6=", ["12", "13"], [1.0, 0.0])).replace("0.0", "NaN"),
            "not JSON (NaN is not JSON)",
        ),
        26: (
            good(12, ["12", "13"], [1.0, 0.5]),
            "prompt must be a non-empty string or a list of chat messages",
        ),
        27: (good("7+7=", ["14", "15"], [1.0]), "rewards must be a list of 2 numbers, one per response"),
        28: (good("8+8=", ["16", "17"], [1.0, "high"]), 'rewards must be finite numbers, got "high"'),
        29: ({"prompt": "9+9=", "responses": ["18"]}, "missing rewards"),
        31: (good("9+1=", ["10", "11"], [0.5, 0.5]), None),  # all tied: read, then dropped
    }
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
    text += "\n" + "\n".join(v if isinstance(v, str) else json.dumps(v) for v, _ in list(bad.values())[:-1])
    text += "\n" + '{"prompt": "caf\xe9"}'  # line 30 is written as Latin-1 bytes below
    text += "\n" + json.dumps(bad[31][0]) + "\n"
    path.write_bytes(text.replace("caf\xe9", "CAFE").encode().replace(b"CAFE", b"caf\xe9"))
    cfg = micro("data=lists", f"data.path={path}", "iterations=1", "objective=lambdarank")
    r = build(cfg)
    summary = fit(r)
    skipped = {s["line"]: s["reason"] for s in summary["data"]["skipped_lines"]}
    expected = {n: why for n, (_, why) in bad.items() if why} | {30: "not UTF-8"}
    assert set(skipped) == set(expected)
    for n, why in expected.items():
        assert skipped[n].startswith(why), (n, skipped[n])
    assert summary["data"]["lists_read"] == 21 and summary["data"]["lines_read"] == 31
    assert summary["history"][1]["dropped"] == {"all_tied": 1}
    assert len(r.datamodule.lists) == 20  # exactly the good lines
    losses = [float(v) for k, v in r.trainer.logged_metrics.items() if "loss" in k]
    assert losses and all(math.isfinite(x) for x in losses)
    run_dir = Path(summary["config"]["run_dir"])
    for written in [run_dir / "summary.json", *run_dir.glob("pool/*.jsonl")]:  # strict JSON out
        for line in [written.read_text()] if written.suffix == ".json" else written.read_text().splitlines():
            json.loads(line, parse_constant=lambda c, f=written: pytest.fail(f"{f} holds {c}"))


@pytest.mark.slow
def test_a_file_with_no_valid_line_stops_with_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n[1, 2]\n")
    out = larpo(
        "data=lists",
        f"data.path={path}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *MICRO[:10],
        f"model.cache_dir={tmp_path / 'cache'}",
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip().splitlines()[-1].startswith(f"larpo: data.path={path}: has no valid list (line 1: not JSON")
    )


def test_a_run_with_every_list_dropped_stops_with_a_clear_error(micro, tmp_path):
    path = tmp_path / "tied.jsonl"
    write_lines(path, [good(f"{a}+1=", ["1", "2"], [0.3, 0.3]) for a in range(5)])
    with pytest.raises(
        RuntimeError, match=r"all 5 lists were dropped \(\{'all_tied': 5\}\): the reward model gave every"
    ):
        fit(build(micro("data=lists", f"data.path={path}", "iterations=1", "objective=pairwise")))


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_pools_and_metrics(micro, tmp_path):
    summaries = []
    for name in ("a", "b"):
        cfg = micro()
        cfg.run_dir = str(tmp_path / name)
        summaries.append(fit(build(cfg)))
    assert summaries[0]["history"] == summaries[1]["history"]
    for s in (1, 2):
        assert (tmp_path / "a" / "pool" / f"iteration_{s}.jsonl").read_bytes() == (
            tmp_path / "b" / "pool" / f"iteration_{s}.jsonl"
        ).read_bytes()


# --- safety -----------------------------------------------------------------------------------------


class Exploit:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.slow
def test_checkpoints_hold_plain_data_and_loading_never_runs_code(micro, tmp_path):
    summary = fit(build(micro("iterations=1")))
    run_dir = Path(summary["config"]["run_dir"])
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)  # no pickled code needed to read it
    assert any(k.startswith("policy.") for k in state["state_dict"])

    marker = tmp_path / "pwned"
    torch.save({"evil": Exploit(marker)}, ckpt)  # someone swaps in a malicious checkpoint
    out = larpo(f"resume={run_dir}")
    assert out.returncode != 0
    assert not marker.exists()


def test_remote_code_is_off_by_default(tmp_path):
    from helpers.configs import compose_cfg

    cfg = compose_cfg([], tmp_path)
    assert cfg.model.trust_remote_code is False
    for option in Path(CONF, "reward_model").glob("*.yaml"):
        text = option.read_text()
        assert "trust_remote_code: true" not in text.lower()


@pytest.mark.slow
def test_two_runs_started_together_in_one_folder_share_nothing(tmp_path, cache_dir):
    args = [sys.executable, "-m", "larpo", *micro_args(cache_dir, "iterations=1", "logger=wandb")]
    procs = [
        subprocess.Popen(
            [*args, f"objective={name}"],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in ("pairwise", "listmle")
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2  # two directories, even when started in the same second
    targets = set()
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        overrides = (run / ".hydra" / "overrides.yaml").read_text()
        name = summary["config"]["objective"]["_target_"].rsplit(".", 1)[1]
        assert f"objective={name}" in overrides  # each summary matches its own overrides
        assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # and its own W&B run
        targets.add(name)
    assert targets == {"pairwise", "listmle"}


def test_a_resumed_run_keeps_the_hydra_files_of_its_start(tmp_path):
    """Hydra writes no .hydra/ folder for `resume=`: a sweep job extended by hand keeps the
    overrides that name its setting in the report."""
    from larpo.config.compose import compose

    assert compose(["size=smoke"], return_hydra_config=True).hydra.output_subdir == ".hydra"
    assert compose([f"resume={tmp_path}"], return_hydra_config=True).hydra.output_subdir is None


def test_resume_applies_safe_overrides_and_refuses_the_rest(micro, tmp_path):
    from larpo.cli import resumed

    cfg = micro("iterations=1")
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    from omegaconf import OmegaConf

    OmegaConf.save(cfg, run_dir / "config.yaml")
    new = micro("progress=true", "logger=wandb", f"resume={run_dir}")
    kept = resumed(new, ["progress=true", "logger=wandb", f"resume={run_dir}"])
    assert kept.progress is True and kept.logger._target_.endswith("wandb_logger") and kept.run_dir == str(run_dir)
    assert kept.iterations == 1  # the run's own config
    with pytest.raises(ConfigError, match=r"lr=0.5 objective=pairwise cannot apply; drop them"):
        resumed(
            micro("lr=0.5", "objective=pairwise", f"resume={run_dir}"),
            ["lr=0.5", "objective=pairwise", f"resume={run_dir}"],
        )


def test_a_finished_run_extended_by_an_iteration_equals_a_longer_run(micro, tmp_path):
    """`larpo resume=<run> iterations=3` on a finished 2-iteration run continues from its last
    iteration (policy, optimizer, pool, memory, history) and ends where a 3-iteration run ends."""
    from omegaconf import OmegaConf

    from larpo.cli import resumed

    whole, short = (
        micro("iterations=3", "candidate_list.memory=all"),
        micro("iterations=2", "candidate_list.memory=all"),
    )
    whole.run_dir, short.run_dir = str(tmp_path / "whole"), str(tmp_path / "short")
    a = fit(build(whole))
    fit(build(short))
    overrides = [f"resume={tmp_path / 'short'}", "iterations=3"]
    longer = resumed(micro(*overrides), overrides)
    assert longer.iterations == 3 and OmegaConf.to_container(longer.objective) == OmegaConf.to_container(
        short.objective, resolve=True
    )
    b = fit(build(longer))
    assert [h["iteration"] for h in b["history"]] == [0, 1, 2, 3]
    for s in (1, 2, 3):
        assert (tmp_path / "short" / "pool" / f"iteration_{s}.jsonl").read_text() == (
            tmp_path / "whole" / "pool" / f"iteration_{s}.jsonl"
        ).read_text()
    assert b["history"] == a["history"]  # to the last digit, list statistics included
    with pytest.raises(
        ConfigError, match=r"^iterations=2: fewer than the 3 of the run being resumed; give iterations>=3"
    ):
        resumed(micro(f"resume={tmp_path / 'short'}", "iterations=2"), [f"resume={tmp_path / 'short'}", "iterations=2"])
    with pytest.raises(ConfigError, match=r"so lr=0.5 cannot apply"):
        resumed(micro(*overrides, "lr=0.5"), [*overrides, "lr=0.5"])


@pytest.mark.slow
def test_the_phases_add_up_to_the_process_wall_time(tmp_path, cache_dir):
    """`startup` covers the process's start, imports, compose and checks, and `saving` the policy,
    so the phases of summary.json add up to the process's wall time as the user sees it, to its
    exit: larpo leaves once everything is written, without the interpreter's slow teardown."""
    larpo(*micro_args(cache_dir), f"hydra.run.dir={tmp_path / 'warm'}")  # the micro SFT policy, cached
    began = time.time()
    out = larpo(*micro_args(cache_dir), "logger=wandb", f"hydra.run.dir={tmp_path / 'run'}")
    wall = time.time() - began
    assert out.returncode == 0, out.stderr[-2000:]
    timing = json.loads((tmp_path / "run" / "summary.json").read_text())["timing"]
    assert timing["startup"] > 0.2  # at least the imports of torch and Lightning
    assert sum(v for k, v in timing.items() if k != "total") == pytest.approx(timing["total"], abs=0.01)
    assert timing["total"] == pytest.approx(wall, rel=0.1), (timing, wall)
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))) == 1  # the W&B run written
    assert "run finished in" in (tmp_path / "run" / "larpo.log").read_text()  # the log file flushed


@pytest.mark.slow
def test_one_process_owns_a_run_directory_and_a_truncated_checkpoint_stops_in_one_line(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "larpo", *micro_args(cache_dir, "iterations=4"), f"hydra.run.dir={run_dir}"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # until the first process holds the directory
            if (run_dir / "config.yaml").is_file():
                break
            time.sleep(0.1)
        overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
        second = larpo(f"resume={run_dir}")
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert second.stderr.startswith(f"larpo: resume={run_dir}: is in use by pid {first.pid} on ")
        assert "Traceback" not in second.stderr
        assert (run_dir / ".hydra" / "overrides.yaml").read_text() == overrides  # Hydra never ran there
    finally:
        assert first.wait(timeout=600) == 0
    assert json.loads((run_dir / "summary.json").read_text())["history"][-1]["iteration"] == 4

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # truncated, as by a full disk
    size = ckpt.stat().st_size
    out = larpo(f"resume={run_dir}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"larpo: resume={run_dir}: {ckpt} is truncated or not a checkpoint; move it away")
    assert ckpt.stat().st_size == size  # nothing removed


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_a_run_directory_that_cannot_be_created_fails_in_one_line(tmp_path, where):
    """Whoever runs it, root included (for whom a permission check passes in /proc)."""
    if where == "under a file":
        (tmp_path / "afile").write_text("x")
        run_dir, why = tmp_path / "afile" / "run", "Not a directory"
    else:
        run_dir, why = Path("/proc/larpo-cannot-write"), "No such file or directory"
    out = larpo("size=smoke", f"hydra.run.dir={run_dir}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"larpo: hydra.run.dir={run_dir}: cannot be created or written ({why}); "
        "give a directory you can write, e.g. hydra.run.dir=outputs/run"
    )


def test_a_read_only_run_directory_fails_in_one_line(tmp_path):
    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): no read-only directory to refuse")
        out = larpo(f"hydra.run.dir={locked / 'run'}")
        assert out.returncode == 2 and out.stderr.strip().startswith(f"larpo: hydra.run.dir={locked / 'run'}: cannot")
    finally:
        locked.chmod(0o700)


def test_the_report_lists_an_unreadable_summary_and_goes_on(tmp_path):
    from larpo.report.collect import collect

    for i, content in enumerate([b'{"config": {"seed": 0}, "final": {"win_rate_vs_sft": 0.6}}', b"\xff\xfe garbage"]):
        job = tmp_path / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- objective={['a', 'b'][i]}\n")
        (job / "summary.json").write_bytes(content)
    sweep = collect(tmp_path)
    assert [r.setting for r in sweep.runs] == ["objective=a"]
    (failed,) = sweep.failed
    assert failed.startswith("1: objective=b (unreadable summary.json:")


# --- the command line's own errors: one line each ---------------------------------------------------


def test_an_unknown_option_is_one_line_naming_the_closest(tmp_path):
    out = larpo("objective=listmlee", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "HYDRA_FULL_ERROR" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("larpo: objective=listmlee: is not an option of objective (approxndcg, contrastive,")
    assert line.endswith("; use objective=listmle or objective=listmle_erased")
    out = larpo("-m", "objective=pairwise,listmle2", f"hydra.sweep.dir={tmp_path / 'sweep'}")  # a sweep's value
    assert out.returncode == 2 and out.stderr.strip().splitlines()[0].startswith("larpo: objective=listmle2: is not")
    assert not (tmp_path / "sweep").exists()
    user = tmp_path / "conf" / "objective"  # a user's own option in --config-dir is one
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text((Path(CONF) / "objective" / "listmle.yaml").read_text())
    out = larpo("--config-dir", str(tmp_path / "conf"), "--cfg", "job", "objective=mine")
    assert out.returncode == 0 and "listmle" in out.stdout


def test_a_sweeps_cfg_job_is_one_line_saying_how():
    out = larpo("-m", "--cfg", "job", "objective=pairwise,listmle")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("larpo: -m --cfg=job: Hydra prints the config of one run, not of each job of a sweep")
    assert "larpo --cfg job objective=pairwise" in line


def test_a_resume_accepts_the_runs_own_overrides_and_refuses_only_those_that_differ(micro, tmp_path):
    """The run's own command with `resume=` added: `size=smoke` and `lr=` at their stored values
    change nothing; a different lr is refused, named alone."""
    from omegaconf import OmegaConf

    from larpo.cli import resumed

    run_dir = tmp_path / "old"
    run_dir.mkdir()
    OmegaConf.save(micro("size=smoke", "lr=1e-3"), run_dir / "config.yaml")
    again = ["size=smoke", "lr=1e-3", f"resume={run_dir}", "iterations=3"]
    kept = resumed(micro(*again), again)
    assert kept.iterations == 3 and kept.lr == 1e-3 and kept.run_dir == str(run_dir)
    other = ["size=smoke", "lr=2e-3", f"resume={run_dir}"]
    with pytest.raises(ConfigError, match=r"so lr=2e-3 cannot apply; drop them"):
        resumed(micro(*other), other)
    with pytest.raises(ConfigError, match=r"so objective=pairwise cannot apply"):
        resumed(micro("objective=pairwise", f"resume={run_dir}"), ["objective=pairwise", f"resume={run_dir}"])
