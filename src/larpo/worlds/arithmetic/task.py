"""The arithmetic task: prompts, a character tokenizer, noisy SFT targets and a gold judge.

It stands in for a real task offline: prompts such as ``37+48=``, a policy that answers with
characters, and a judge that knows the true answer. Everything is generated from a seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from larpo.worlds.prompts import SeededPrompts
from larpo.worlds.tokenizer import build_tokenizer  # noqa: F401  (the world's tokenizer)

_PROMPT = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*$")
_ANSWER = re.compile(r"^\s*(-?\d+)\s*$")


def true_answer(prompt: str) -> int | None:
    """The exact answer to an arithmetic prompt, or None if the prompt is not one."""
    m = _PROMPT.match(prompt)
    if m is None:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return a + b if op == "+" else a - b if op == "-" else a * b


def parse_answer(response: str) -> int | None:
    """The integer a response states, or None when it states none (empty, garbled)."""
    m = _ANSWER.match(response)
    return int(m.group(1)) if m else None


def judge(prompt: str, response: str) -> float:
    """Gold reward: 1.0 for the exact answer, 1/(1+|error|) when off, 0.0 when unparsable."""
    truth, answer = true_answer(prompt), parse_answer(response)
    if truth is None or answer is None:
        return 0.0
    return 1.0 / (1.0 + abs(answer - truth))


@dataclass(frozen=True)
class ArithmeticTask(SeededPrompts):
    """Prompt distribution: operations drawn uniformly from `ops`, operands uniformly from
    0..10**max_digits - 1, so sizes mix (one operand in ten has one digit).

    Operands are uniform over values, not over digit counts: the few one-digit sums would
    otherwise be a quarter of all prompts, and holding out evaluation prompts would remove
    nearly all of them from training.
    """

    ops: str = "+-"
    max_digits: int = 2
    noise: float = 0.3
    noise_scale: int = 10

    def _operand(self, rng: random.Random) -> int:
        return rng.randint(0, 10**self.max_digits - 1)

    def sample_prompt(self, rng: random.Random) -> str:
        op = rng.choice(self.ops)
        return f"{self._operand(rng)}{op}{self._operand(rng)}="

    def noisy_target(self, prompt: str, rng: random.Random) -> str:
        """SFT target: the true answer, or with probability `noise` a nearby wrong one.

        The noise makes the SFT policy imperfect and diverse, which leaves room for preference
        learning: sampled answers disagree, and the judge can rank them.
        """
        truth = true_answer(prompt)
        if rng.random() < self.noise:
            offset = rng.randint(1, self.noise_scale) * rng.choice((-1, 1))
            return str(truth + offset)
        return str(truth)


def held_out(task: ArithmeticTask, eval_prompts: int, eval_seed: int) -> list[str]:
    """The held-out pool: a fixed seeded set of distinct prompts that SFT and training prompts
    never include."""
    return task.held_out(eval_prompts, eval_seed)


def reference(prompt: str) -> str | None:
    """The true answer's text: the reference answer (verifier, hard negatives)."""
    truth = true_answer(prompt)
    return None if truth is None else str(truth)


def window(prompt: str, width: int = 20) -> list[str]:
    """The answers within `width` of the truth: where the policy's mass is (exact evaluation)."""
    truth = true_answer(prompt)
    return [] if truth is None else [str(truth + d) for d in range(-width, width + 1)]


def unrelated_response(rng: random.Random, length: int = 4) -> str:
    """A response unrelated to the task: symbols with no number in them (the 'easiest' negative)."""
    return "".join(rng.choice("+-*=") for _ in range(length))
