"""The command line: `larpo`, `larpo-sft` and `larpo-generate`.

Each entry point composes the config with Hydra (configs ship in this package, `conf/`; users add
folders with `--config-dir`) and checks it against the typed schema before anything heavy is
imported: `--help`, `--cfg job`, tab completion and every config error cost what Hydra costs.
torch, transformers, Lightning and W&B are imported only when a run starts (the imports inside
the functions below, the only deferred imports of the package).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from larpo.config.compose import compose
from larpo.config.rules import check
from larpo.config.schema import GROUP_SCHEMAS
from larpo.config.walker import check_keys
from larpo.fields import ConfigError
from larpo.run import jobs
from larpo.run.resume import resumed

log = logging.getLogger("larpo")


def fail(prog: str, err: ConfigError) -> None:
    print(f"{prog}: {err}", file=sys.stderr)
    raise SystemExit(2)


def _overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # composed outside a Hydra app
        return []


def _single_run() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.RUN
    except ValueError:
        return False


def config_for_run(cfg: DictConfig, overrides: list[str], single_run: bool, choices: dict | None = None) -> DictConfig:
    """The config a run will use (a resumed run's own, with its safe overrides), checked."""
    if cfg.experiment_name and single_run:
        raise ConfigError(
            "experiment", cfg.experiment_name, "is a sweep over settings and seeds", "add -m: larpo -m experiment=..."
        )
    if cfg.resume:
        cfg = resumed(cfg, overrides)
    check(cfg, choices)
    return cfg


_sigterm_received = False


def _on_sigterm(signum, frame):
    global _sigterm_received
    _sigterm_received = True
    raise KeyboardInterrupt  # a preempted cluster job stops like Ctrl-C: cleanly, with the resume hint


def stopped_early(err: BaseException) -> bool:
    """Whether `err`, raised out of a run, means the run was stopped (Ctrl-C, SIGTERM, Lightning's
    exit after an interrupt) rather than that it ended. After a SIGTERM any exit counts: Lightning's
    own SIGTERM handler also stops the loop at an epoch's end with `SIGTERMException`, a SystemExit
    with no code (exit status 0), which is what a run sees where a library swallowed our interrupt."""
    if isinstance(err, KeyboardInterrupt) or _sigterm_received:
        return True
    return isinstance(err, SystemExit) and err.code not in (0, None)


# a single run's config checked by `fail_fast` before Hydra's run path: not checked again
_CHECKED: DictConfig | None = None


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def _train(cfg: DictConfig) -> float | None:
    try:
        if _CHECKED is not None:  # the same overrides, composed again by Hydra's run path
            cfg = resumed(cfg, _overrides()) if cfg.resume else cfg
        else:
            cfg = config_for_run(cfg, _overrides(), _single_run())
    except ConfigError as err:
        fail("larpo", err)
    sweep_job = not _single_run() and not cfg.resume
    if sweep_job:  # the same sweep command again: a finished job is skipped, an interrupted one resumed
        finished = jobs.finished_job(cfg)
        if finished is not None:
            log.info("job already finished, skipped: %s", cfg.run_dir)
            return finished["final"].get("win_rate_vs_sft")
        earlier = jobs.earlier_run(cfg)  # the same config, finished in any experiment
        if earlier is not None:
            return jobs.reuse(cfg, *earlier)["final"].get("win_rate_vs_sft")
        cfg = jobs.interrupted_job(cfg)
    from larpo.console import setup
    from larpo.run.fit import run  # the heavy part: torch, transformers, Lightning

    setup()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        summary = run(cfg, checked=True)
    except ConfigError as err:
        fail("larpo", err)
    except (KeyboardInterrupt, SystemExit) as err:
        if not stopped_early(err):
            raise
        again = continue_sweep_command() if sweep_job else f"larpo resume={cfg.run_dir}"
        print(f"\nlarpo: stopped. Continue this {'sweep' if sweep_job else 'run'} with:\n  {again}", file=sys.stderr)
        raise SystemExit(130) from None
    return summary["final"].get("win_rate_vs_sft")


def continue_sweep_command() -> str:
    """The command that continues this sweep: the same arguments, into the same sweep directory."""
    args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
    return " ".join(["larpo", *args, f"hydra.sweep.dir={HydraConfig.get().sweep.dir}"])


def quick_help(config_name: str) -> bool:
    """`--help`, answered from the primary config's `hydra.help` and a scan of the config folders
    (the package's and `--config-dir`'s). Hydra's own --help composes every option of every group
    (a second or more); this prints the same page in the time of an import. `--hydra-help` is Hydra's."""
    if not {"--help", "-h"} & set(sys.argv[1:]):
        return False
    conf = Path(__file__).parent / "conf"
    groups: dict[str, set[str]] = {}
    for d in config_dirs(sys.argv[1:]):
        for f in d.glob("*/*.yaml"):
            if f.parent.name != "hydra":
                groups.setdefault(f.parent.name, set()).add(f.stem)
    help_cfg = OmegaConf.load(conf / f"{config_name}.yaml").hydra.help
    listing = "\n".join(f"{g}: {', '.join(sorted(o))}" for g, o in sorted(groups.items()))
    page = help_cfg.template.replace("${hydra.help.header}", help_cfg.header)
    page = page.replace("${hydra.help.footer}", help_cfg.footer).replace("$APP_CONFIG_GROUPS", listing)
    try:
        print(page, flush=True)
    except BrokenPipeError:  # `larpo --help | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return True


def fail_fast(args: list[str]) -> None:
    """A single run's config errors, answered with one compose: Hydra's run path composes twice,
    then creates the run directory and sets up logging before the task sees the config. Sweeps,
    Hydra's own flags and composition errors are left to Hydra."""
    config_dir, overrides, i = None, [], 0
    while i < len(args):
        if args[i] in ("--config-dir", "-cd") and i + 1 < len(args):
            config_dir, i = args[i + 1], i + 2
            continue
        if args[i].startswith("-"):
            return
        if not args[i].startswith(("hydra.", "hydra/", "+hydra")):
            overrides.append(args[i])
        i += 1
    try:
        cfg = compose(overrides, config_dir=config_dir, return_hydra_config=True)
    except Exception:  # Hydra reports a composition error its own way
        return
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.run_dir = "."  # `${hydra:runtime.output_dir}` exists only inside the app
    global _CHECKED
    try:
        _CHECKED = config_for_run(cfg, overrides, single_run=True, choices=choices)
        given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")]
        check_writable(given[-1] if given else (_CHECKED.resume or "outputs"))
    except ConfigError as err:
        fail("larpo", err)


def check_writable(run_dir: str) -> None:
    """The run directory must be creatable and writable: found before Hydra creates it, so the
    error is one line, not a traceback. It is created here (Hydra would create it next) and a file
    is written in it, whatever the cause of a failure: a path under a file, no permission, a
    read-only mount, a pseudo-filesystem such as /proc (where root's permission checks pass)."""
    path = Path(run_dir).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".larpo-write-check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            "hydra.run.dir",
            run_dir,
            f"cannot be created or written ({err.strerror or err})",
            "give a directory you can write, e.g. hydra.run.dir=outputs/run",
        ) from None


def beside_others(argv: list[str]) -> bool:
    """Whether this process shares the machine's cores by what its command line says: a sweep
    whose jobs run side by side (`-m hydra/launcher=local`, unless n_jobs=1), or `threads=N` below
    the core count (the user leaves cores to other work)."""
    args = set(argv)
    parallel = bool({"-m", "--multirun"} & args) and "hydra/launcher=local" in args
    if parallel and "hydra.launcher.n_jobs=1" not in args:
        return True
    threads = [a.split("=", 1)[1] for a in argv if a.startswith("threads=")]
    return bool(threads) and threads[-1].isdigit() and int(threads[-1]) < (os.cpu_count() or 1)


def share_cores(argv: list[str]) -> None:
    """OpenMP threads that spin while a run has the machine to itself, and sleep when idle where
    it shares the cores (`beside_others`): two processes that both spin slow each other down about
    25 times (benchmarks/side_by_side.py), while sleeping costs a lone run about 30% of its
    training phase (docs/performance.md). Set before torch loads, which is when OpenMP reads it;
    a value the user exported wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE" if beside_others(argv) else "ACTIVE")


def leave() -> None:
    """Exit a single run at once once everything is written: the summary, the loggers (finished
    by the run) and the log file are flushed and closed first. The interpreter's own teardown,
    which frees torch's and the loggers' objects one by one, took 2-3 s after a smoke run's summary
    was written, time the user waited for the prompt and no phase of the run accounts for. A sweep
    exits the ordinary way: its launcher's worker processes are shut down at exit (skipped, the
    joblib launcher's idle workers would hold the terminal's pipes for 5 minutes)."""
    if {"-m", "--multirun"} & set(sys.argv[1:]):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def config_dirs(argv: list[str]) -> list[Path]:
    """The package's config folder and any `--config-dir` of the command line."""
    extra = [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("--config-dir", "-cd")]
    return [Path(__file__).parent / "conf", *extra]


def check_options(argv: list[str], prog: str = "larpo") -> None:
    """Every `group=option` of the command line (each value of a sweep's `a,b` too) names an option
    file of that group, in the package or a `--config-dir`: a typo is one line naming the closest
    options, before Hydra's multi-line error."""
    import difflib

    if any(a.startswith(("hydra.searchpath", "+hydra.searchpath")) for a in argv):
        return  # options in folders only Hydra knows of: left to Hydra
    groups: dict[str, set[str]] = {}
    for d in config_dirs(argv):
        for f in d.glob("*/*.yaml"):
            groups.setdefault(f.parent.name, set()).add(f.stem)
    for arg in argv:
        key, eq, values = arg.lstrip("+").partition("=")
        if not eq or key not in groups or any(c in values for c in "()[]*$"):
            continue
        for value in values.split(","):
            if value and value != "null" and value not in groups[key]:
                near = difflib.get_close_matches(value, sorted(groups[key]), n=3, cutoff=0.5)
                fix = f"use {' or '.join(f'{key}={n}' for n in near)}" if near else "see `larpo --help`"
                options = ", ".join(sorted(groups[key]))
                fail(prog, ConfigError(key, value, f"is not an option of {key} ({options})", fix))


def refuse_sweep_cfg(argv: list[str]) -> None:
    """`-m --cfg job`: Hydra prints the config of one run, never of a sweep's jobs."""
    args = set(argv)
    if {"-m", "--multirun"} & args and {"--cfg", "-c"} & args:
        shown = [a for a in argv if a not in ("-m", "--multirun")]
        one = " ".join(a.split(",")[0] if "=" in a else a for a in shown)
        fail(
            "larpo",
            ConfigError(
                "-m --cfg",
                "job",
                "Hydra prints the config of one run, not of each job of a sweep",
                f"drop -m and give one value per key (larpo {one}); a sweep writes each job's config.yaml",
            ),
        )


def train() -> None:
    """`larpo`: the LarPO loop."""
    share_cores(sys.argv[1:])
    if not quick_help("train"):
        check_options(sys.argv[1:])
        refuse_sweep_cfg(sys.argv[1:])
        fail_fast(sys.argv[1:])
        _train()
        leave()


@hydra.main(config_path="conf", config_name="sft", version_base="1.3")
def _sft(cfg: DictConfig) -> None:
    try:
        check(cfg)
    except ConfigError as err:
        fail("larpo-sft", err)
    from larpo.console import setup
    from larpo.run.sft import sft_report

    setup()
    print(json.dumps(sft_report(cfg), indent=2))


def sft() -> None:
    """`larpo-sft`: build (or load) the SFT policy of the data option's world, print its metrics."""
    share_cores(sys.argv[1:])
    if not quick_help("sft"):
        _sft()


@hydra.main(config_path="conf", config_name="generate", version_base="1.3")
def _generate(cfg: DictConfig) -> None:
    try:
        if OmegaConf.is_missing(cfg, "prompts") or not Path(str(cfg.prompts)).expanduser().is_file():
            prompts = "???" if OmegaConf.is_missing(cfg, "prompts") else cfg.prompts
            raise ConfigError("prompts", prompts, "is not a file", "give a JSON or JSONL file of prompts")
        for group in ("model", "generator"):
            check_keys(cfg[group], GROUP_SCHEMAS[group], f"{group}.")
    except ConfigError as err:
        fail("larpo-generate", err)
    from larpo.console import setup
    from larpo.generation.export import generate

    setup()
    generate(cfg)


def generate() -> None:
    """`larpo-generate`: a policy's answers to a prompt file, in AlpacaEval's format."""
    share_cores(sys.argv[1:])
    if not quick_help("generate"):
        _generate()
