"""Held-out evaluation by the gold judge: the policy as a generator and as a retriever."""

from __future__ import annotations

from larpo.worlds.arithmetic import judge


def pass_at(correct: list[list[bool]], n: int) -> float:
    """Recall@n of the policy as a retriever: share of prompts with a correct answer in n samples."""
    return sum(any(c[:n]) for c in correct) / max(1, len(correct))


def policy_metrics(model, tokenizer, prompts: list[str], generator, temperature: float, k: int,
                   seed: int) -> dict[str, float]:
    """Greedy accuracy, sampled accuracy at `temperature`, mean judge reward and pass@1..k."""
    greedy = [r[0] for r in generator(model, tokenizer, prompts, 1, 0.0, seed, desc="eval greedy")]
    samples = generator(model, tokenizer, prompts, k, temperature, seed, desc="eval sample")
    rewards = [[judge(p, r) for r in rs] for p, rs in zip(prompts, samples, strict=True)]
    correct = [[x == 1.0 for x in rs] for rs in rewards]
    out = {
        "accuracy_greedy": sum(judge(p, g) == 1.0 for p, g in zip(prompts, greedy, strict=True))
        / len(prompts),
        "accuracy_sampled": sum(sum(c) for c in correct) / (len(prompts) * k),
        "gold_reward": sum(sum(r) for r in rewards) / (len(prompts) * k),
        "distinct_answers": sum(len(set(rs)) for rs in samples) / len(prompts),
    }
    out.update({f"pass_at_{n}": pass_at(correct, n) for n in range(1, k + 1)})
    return out
