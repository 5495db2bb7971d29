"""The real-model code paths, offline: hub-style checkpoints saved to temp directories, chat
templates, a reward model with its own tokenizer, GSM8K with the verifier, UltraFeedback lists,
optional packages, and the AlpacaEval export."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.configs import compose_cfg
from helpers.env import ENV
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from larpo.data.answers import answers_match, final_number
from larpo.data.contract import Source
from larpo.data.lists import read_lists
from larpo.rewards.contract import RewardContext
from larpo.rewards.verifier import VerifierReward
from larpo.run.fit import run
from larpo.sequences import prompt_text

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = [  # one quick iteration of a tiny random policy
    "iterations=1",
    "epochs_per_iteration=1",
    "candidate_list.size=4",
    "batch_size=4",
    "generator.max_new_tokens=8",
    "progress=false",
    "logger=csv",
]


def cli(*args, command="larpo", check=True):
    exe = [str(Path(sys.executable).parent / command)]
    out = subprocess.run([*exe, *args], capture_output=True, text=True, env=ENV, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def pool(run_dir: Path, iteration: int = 1) -> list[dict]:
    path = run_dir / "pool" / f"iteration_{iteration}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_ultrafeedback_with_a_chat_policy_and_a_reward_model_with_another_tokenizer(tmp_path, tiny_hub):
    run_dir = tmp_path / "run"
    cli(
        "model=hf",
        f"model.path={tiny_hub['policy']}",
        "reward_model=sequence_classifier",
        f"reward_model.path={tiny_hub['reward']}",
        "data=ultrafeedback",
        f"data.path={FIXTURES / 'ultrafeedback.jsonl'}",
        "data.prompts_per_iteration=8",
        "data.eval_prompts=2",
        *SMALL,
        f"hydra.run.dir={run_dir}",
    )
    rows = pool(run_dir)
    prompts = {r["prompt"] for r in rows}
    assert len(rows) == 6 and "Write a haiku about the sea." in prompts
    multi = next(p for p in prompts if p.startswith("[{"))  # the multi-turn prompt stays a conversation
    assert [t["role"] for t in json.loads(multi)] == ["user", "assistant", "user"]

    # rewards are the reward model's raw logits on ITS chat template and tokenizer, written by hand here
    rm_tok = AutoTokenizer.from_pretrained(tiny_hub["reward"])
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_hub["reward"]).eval()
    row = next(r for r in rows if r["prompt"] == "Write a haiku about the sea.")
    i = next(j for j, resp in enumerate(row["responses"]) if resp)
    text = f"### user: {row['prompt']}\n### assistant: {row['responses'][i]}\n"
    with torch.no_grad():
        logit = rm(**rm_tok(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0].item()
    assert row["rewards"][i] == pytest.approx(logit, abs=1e-4)

    # the reference log-probs condition on the policy's chat template (reference = initial policy)
    tok = AutoTokenizer.from_pretrained(tiny_hub["policy"])
    policy = AutoModelForCausalLM.from_pretrained(tiny_hub["policy"]).eval()
    kept = [row["responses"][j] for j in row["kept"]]
    prompt_ids = tok(f"<s><|user|>\n{row['prompt']}</s>\n<|assistant|>\n", add_special_tokens=False)["input_ids"]
    cut = (row.get("truncated") or [False] * len(row["responses"]))[row["kept"][0]]  # no EOS was generated
    resp_ids = tok(kept[0], add_special_tokens=False)["input_ids"] + ([] if cut else [tok.eos_token_id])
    with torch.no_grad():
        logits = policy(torch.tensor([prompt_ids + resp_ids])).logits[0].log_softmax(-1)
    by_hand = sum(logits[len(prompt_ids) - 1 + t, tok_id].item() for t, tok_id in enumerate(resp_ids))
    assert row["ref_logps"][0] == pytest.approx(by_hand, abs=1e-3)

    summary = json.loads((run_dir / "summary.json").read_text())
    # no gold judge for UltraFeedback: the reward model judges 2 held-out prompts' samples
    assert summary["history"][0]["judge_win_rate_vs_sft"] == 0.5
    assert set(summary["final"]) >= {"judge_win_rate_vs_sft", "judge_lc_win_rate_vs_sft", "judge_score", "truncated"}
    assert "win_rate_vs_sft" not in summary["final"]

    # the trained policy, exported for AlpacaEval
    prompts_file = tmp_path / "alpaca_eval.json"
    prompts_file.write_text(json.dumps([{"instruction": "Name a colour.", "dataset": "helpful_base"}] * 2))
    out = tmp_path / "answers.json"
    cli(
        "model=hf",
        f"model.path={run_dir / 'policy'}",
        f"prompts={prompts_file}",
        f"out={out}",
        "name=larpo-tiny",
        "generator.max_new_tokens=6",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'gen'}",
        command="larpo-generate",
    )
    answers = json.loads(out.read_text())
    assert [set(a) for a in answers] == [{"instruction", "output", "generator", "dataset"}] * 2
    assert answers[0]["generator"] == "larpo-tiny" and answers[0]["instruction"] == "Name a colour."
    assert answers[0]["output"] == answers[1]["output"]  # greedy: the same prompt, the same answer


def test_prompt_text_uses_the_chat_template_only_when_there_is_one(tiny_hub):
    tok = AutoTokenizer.from_pretrained(tiny_hub["policy"])
    assert prompt_text(tok, "Hi") == "<s><|user|>\nHi</s>\n<|assistant|>\n"
    turns = json.dumps(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
    )
    assert prompt_text(tok, turns) == "<s><|user|>\na</s>\n<|assistant|>\nb</s>\n<|user|>\nc</s>\n<|assistant|>\n"
    tok.chat_template = None
    assert prompt_text(tok, "37+48=") == "37+48="


@pytest.mark.parametrize(
    ("response", "reference", "match"),
    [
        ("The answer is 12.", "3 + 9 = 12\n#### 12", True),
        ("120", "#### 12", False),  # the substring trap
        ("12", "#### 120", False),
        ("#### 2,000", "1,250 + 750 = 2,000.\n#### 2,000", True),
        ("2000.0", "#### 2,000", True),
        ("It is 7, not 12. #### 7", "#### 7", True),  # the number after ####, not the last one
        ("no number here", "#### 7", False),
        ("", "#### 0", False),
        ("-3", "#### -3", True),
    ],
)
def test_verifier_compares_final_numbers(response, reference, match):
    assert answers_match(response, reference) is match
    context = RewardContext(Source([], [], reference=lambda p: reference), "", "", 0, progress=False)
    assert VerifierReward(context).score(["q"], [[response]]) == [[float(match)]]


def test_final_number():
    assert final_number("so 3 + 4 = 7 apples") == 7.0
    assert final_number("#### 1,234") == 1234.0 and final_number("nothing") is None


def test_gsm8k_with_the_verifier(tmp_path, tiny_hub):
    cfg = compose_cfg(
        [
            "model=hf",
            f"model.path={tiny_hub['policy']}",
            "data=gsm8k",
            f"data.path={FIXTURES / 'gsm8k.jsonl'}",
            "data.eval_path=null",  # hold questions out of the file instead
            "data.eval_prompts=3",
            "data.prompts_per_iteration=8",
            "reward_model=verifier",
            "negatives=hard",  # the correct answer is the positive (Figure 3a)
            "objective=pairwise",
            "eval.samples=2",
            *SMALL,
        ],
        tmp_path,
    )
    summary = run(cfg)
    rows = pool(Path(cfg.run_dir))
    assert len(rows) == 8 and [s["line"] for s in summary["data"]["skipped_lines"]] == [12]
    for row in rows:
        ref = row["sources"].index("reference")
        assert row["responses"][ref] == row["reference"] and row["rewards"][ref] == 1.0
        assert ref in row["kept"]
        # every other candidate is scored by numeric comparison with the reference
        for resp, reward in zip(row["responses"], row["rewards"]):
            assert reward == float(answers_match(resp, row["reference"]))
    assert 0.0 <= summary["final"]["accuracy_sampled"] <= 1.0 and "win_rate_vs_sft" in summary["final"]


def test_ultrafeedback_rated_completions_convert_to_ranked_lists():
    lists, records = read_lists(str(FIXTURES / "ultrafeedback_rated.jsonl"))
    assert [s["line"] for s in records.skipped] == [3] and [lst.prompt for lst in lists] == [
        "Describe a sunset.",
        "List three fruits.",
        "Why is the sky blue?",
    ]
    assert lists[0].rewards == [7.5, 3.0, 9.0, 5.0]
    assert lists[2].rewards == [4.5, 1.5]  # the mean of the aspect ratings when no overall score
    assert all(math.isnan(t) for t in lists[0].temperatures)


def test_offline_training_on_ultrafeedback_lists(tmp_path, tiny_hub):
    cfg = compose_cfg(
        [
            "model=hf",
            f"model.path={tiny_hub['policy']}",
            "data=lists",
            f"data.path={FIXTURES / 'ultrafeedback_rated.jsonl'}",
            "data.evaluate=false",
            "objective=pairwise",
            *SMALL,
        ],
        tmp_path,
    )
    summary = run(cfg)
    rows = {r["prompt"]: r for r in pool(Path(cfg.run_dir))}
    # ranked best first; pairwise keeps the best and the worst
    assert rows["Describe a sunset."]["rewards"] == [9.0, 7.5, 5.0, 3.0]
    assert rows["Describe a sunset."]["kept"] == [0, 3]
    assert [s["line"] for s in summary["data"]["skipped_lines"]] == [3] and summary["reference_forwards"] == 6


@pytest.mark.parametrize(
    ("override", "package"),
    [("generator=vllm", "pip install vllm"), ("reward_model=pairrm", "pip install llm-blender")],
)
def test_optional_packages_missing_fail_clearly(override, package, tmp_path):
    out = cli(override, f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert out.returncode != 0 and package in out.stderr
    assert not (tmp_path / "run" / "pool").exists()  # before any work


def test_optional_package_classes_name_the_package():
    from larpo.generation.vllm import VLLMGenerator
    from larpo.rewards.pairrm import PairRMReward

    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMGenerator("x", work_dir="y")
    with pytest.raises(ImportError, match="pip install llm-blender"):
        PairRMReward()


def test_a_local_gsm8k_file_is_not_held_out_whole(tmp_path):
    """gsm8k's `eval_path: ${.path}` names a hub id's test split; with a local file (no splits) it
    used to hold out every question and train on none. Now the held-out questions are drawn from
    the file, the file is read once, and holding out all of it stops in one line."""
    from larpo.data.gsm8k import gsm8k
    from larpo.fields import ConfigError

    path = str(FIXTURES / "gsm8k.jsonl")
    lines = [line for line in (FIXTURES / "gsm8k.jsonl").read_text().splitlines() if line.strip()]
    common = dict(subset=None, split="train", eval_split="test", question_key="question", answer_key="answer")
    source = gsm8k(path, eval_path=path, prompts_per_iteration=100, eval_prompts=3, eval_seed=1, seed=0, **common)
    assert len(source.eval) == 3 and not set(source.eval) & set(source.train)
    assert len(source.eval) + len(set(source.train)) == len(lines) - 1  # one bad line skipped
    assert source.report["lines_read"] == len(lines)  # read once
    with pytest.raises(ConfigError, match="holds out all .* prompts of data.path, leaving none to train on"):
        gsm8k(path, eval_path=path, prompts_per_iteration=100, eval_prompts=1319, eval_seed=1, seed=0, **common)
