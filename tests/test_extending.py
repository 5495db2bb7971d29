"""Extending larpo from a user's own folder, the package untouched: an objective and a reward
model as option files whose `_target_` names the user's code; and the package's own structure
(no import cycles, no second registry of option names)."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.configs import CONF, MICRO
from helpers.env import env

import larpo
from larpo import objectives

USER_CODE = '''
"""A researcher's own loss and reward model, outside the larpo package."""
import os

import torch.nn.functional as F

from larpo.worlds.arithmetic import judge


def _mark(name):
    with open(os.environ["MARKS"], "a") as f:
        f.write(name + "\\n")


def margin_loss(logps, ref_logps, mask, lengths=None, rewards=None, *, beta=0.1, margin=0.5):
    """DPO with a margin, best against worst (the user's objective)."""
    _mark("loss")
    g = beta * (logps - ref_logps)
    last = mask.sum(1) - 1
    worst = g.gather(1, last.unsqueeze(1)).squeeze(1)
    return -F.logsigmoid(g[:, 0] - worst - margin).mean()


class SignedJudge:
    """The gold judge mapped to [-1, 1], as a real reward model's signed scores."""

    list_relative = False

    def __init__(self, context, scale=2.0):
        self.scale = scale

    def score(self, prompts, candidates):
        _mark("reward")
        return [[self.scale * judge(p, r) - 1.0 for r in rs] for p, rs in zip(prompts, candidates)]
'''


def user_folder(tmp_path: Path) -> Path:
    """The documented recipe: copy a shipped option file, point its `_target_` at your code."""
    conf = tmp_path / "my_conf"
    (conf / "objective").mkdir(parents=True)
    (conf / "reward_model").mkdir()
    shipped = (Path(CONF) / "objective" / "pairwise.yaml").read_text()
    mine = shipped.replace("_target_: larpo.objectives.ranking.pairwise", "_target_: my_larpo_ext.margin_loss")
    (conf / "objective" / "mine.yaml").write_text(mine + "margin: 0.25\n")
    (conf / "reward_model" / "signed.yaml").write_text(
        "_target_: my_larpo_ext.SignedJudge\n_partial_: true\nscale: 2.0\n"
    )
    (tmp_path / "my_larpo_ext.py").write_text(textwrap.dedent(USER_CODE))
    return conf


@pytest.mark.slow
def test_a_users_objective_and_reward_model_plug_in_from_their_own_folder(tmp_path, cache_dir):
    conf = user_folder(tmp_path)
    marks = tmp_path / "marks.txt"
    run_env = env(PYTHONPATH=str(tmp_path), MARKS=str(marks))
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "larpo",
            "--config-dir",
            str(conf),
            "objective=mine",
            "reward_model=signed",
            *MICRO,
            "iterations=1",
            f"model.cache_dir={cache_dir}",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    calls = marks.read_text().split()
    assert calls.count("reward") >= 1 and calls.count("loss") >= 3  # scored, then trained with
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["objective"]["margin"] == 0.25
    rows = [json.loads(line) for line in (run_dir / "pool" / "iteration_1.jsonl").read_text().splitlines()]
    from larpo.worlds.arithmetic import judge

    for row in rows:  # the pool holds the user's reward model's scores
        assert row["rewards"] == [2.0 * judge(row["prompt"], r) - 1.0 for r in row["responses"]]
    assert any(w < 0 for row in rows for w in row["rewards"])


def test_build_finds_a_users_objective_on_the_search_path(tmp_path, monkeypatch):
    conf = user_folder(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MARKS", str(tmp_path / "marks.txt"))
    obj = objectives.build("mine", config_dir=str(conf), margin=1.0, sft_weight=0.0)
    assert obj.fn.func.__module__ == "my_larpo_ext" and obj.hparams == {"beta": 0.1, "margin": 1.0}
    import torch

    logps, ref = torch.tensor([[-1.0, -3.0]]), torch.zeros(1, 2)
    loss = obj(logps, ref, torch.ones(1, 2, dtype=torch.bool))
    expected = -torch.nn.functional.logsigmoid(torch.tensor(0.1 * -1.0 - 0.1 * -3.0 - 1.0))
    assert float(loss) == float(expected)


# --- structure -----------------------------------------------------------------------------------

PACKAGE = Path(larpo.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Every larpo module `path` imports, at the top or deferred inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m in modules}


def test_no_import_cycles_deferred_imports_included():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: imports(p, set(files)) - {m} for m, p in files.items()}

    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path, n])
            if n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_no_second_registry_of_option_names_in_the_code():
    """The config group is the registry: no option name is a string constant in the package."""
    names = {
        f.stem
        for g in ("objective", "negatives", "reward_model", "data", "generator", "logger")
        for f in (Path(CONF) / g).glob("*.yaml")
    }
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        # the members of a key's enum may share a name with an option (TRL's loss_type "grpo"):
        # they are the values of that key, not a list of options
        members = {
            id(n.value)
            for c in ast.walk(tree)
            if isinstance(c, ast.ClassDef) and any(getattr(b, "attr", None) == "Enum" for b in c.bases)
            for n in c.body
            if isinstance(n, ast.Assign)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                if id(node) not in members:
                    found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []


def test_no_module_outside_worlds_imports_a_world():
    """A world is reached through its data option (its source, judge and SFT stage), never imported."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    offenders = {
        m: sorted(n for n in imports(p, set(files)) if n.startswith("larpo.worlds"))
        for m, p in files.items()
        if not m.startswith("larpo.worlds")
    }
    assert {m: n for m, n in offenders.items() if n} == {}
    assert any(n.startswith("larpo.worlds") for n in files)  # the check looks at real modules
