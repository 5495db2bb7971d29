"""The digits world: multi-digit addition judged digit by digit, with SFT noise structured the way
people get additions wrong (dropped carries, single-digit slips).

Why a second world: in the arithmetic world one string is right and the judge's grading only
matters between two wrong answers, so a list's order below its top carries little information.
Here an answer has 3-4 digits and the judge gives credit per digit, so wrong answers are graded
(many reward levels in a list); the SFT targets drop the first carry more often than not, so the
SFT policy's mode is often wrong, and a sample is rarely right in every digit.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from larpo.worlds.prompts import SeededPrompts
from larpo.worlds.tokenizer import build_tokenizer  # noqa: F401  (the world's tokenizer)

_PROMPT = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*=\s*$")
_ANSWER = re.compile(r"^\s*(\d+)\s*$")


def operands(prompt: str) -> tuple[int, int] | None:
    m = _PROMPT.match(prompt)
    return (int(m.group(1)), int(m.group(2))) if m else None


def true_answer(prompt: str) -> int | None:
    ab = operands(prompt)
    return None if ab is None else ab[0] + ab[1]


def reference(prompt: str) -> str | None:
    """The true sum's text: the reference answer (verifier, hard negatives)."""
    truth = true_answer(prompt)
    return None if truth is None else str(truth)


def digit_credit(a: str, b: str) -> float:
    """1 for the same digit, 0.5 for one off (mod 10: what a dropped or extra carry does), else 0."""
    d = abs(int(a) - int(b)) % 10
    return 1.0 if d == 0 else 0.5 if d in (1, 9) else 0.0


def judge(prompt: str, response: str) -> float:
    """Gold reward with per-digit partial credit: the answer and the truth aligned at their last
    digit, each position credited by `digit_credit`, the sum divided by the longer length (a
    missing or extra digit earns nothing). 1.0 exactly when the answer is right, 0.0 unparsable."""
    truth = reference(prompt)
    m = _ANSWER.match(response)
    if truth is None or m is None:
        return 0.0
    answer = m.group(1)
    if len(answer) > 1 and answer[0] == "0":  # a leading zero is a malformed number
        return 0.0
    n = max(len(truth), len(answer))
    credit = sum(digit_credit(x, y) for x, y in zip(reversed(answer), reversed(truth)))
    return credit / n


def add_with_slips(a: int, b: int, drop: list[bool], slips: dict[int, int]) -> str:
    """a + b written digit by digit from the right, where `drop[i]` forgets the carry out of
    position i and `slips[i]` writes that digit instead of the computed one."""
    xs, ys = str(a)[::-1], str(b)[::-1]
    digits, carry = [], 0
    for i in range(max(len(xs), len(ys))):
        s = int(xs[i]) if i < len(xs) else 0
        s += (int(ys[i]) if i < len(ys) else 0) + carry
        digits.append(s % 10)
        carry = 0 if drop[i] else s // 10
    if carry:
        digits.append(carry)
    digits = [slips.get(i, d) for i, d in enumerate(digits)]
    return "".join(map(str, reversed(digits))).lstrip("0") or "0"


@dataclass(frozen=True)
class DigitsTask(SeededPrompts):
    """Prompts `a+b=` with operands of `min_digits`..`max_digits` digits (uniform over values).

    SFT targets: the carry out of the units digit is dropped with probability `first_carry_drop`
    (above 0.5, so where there is one the SFT policy's mode is wrong), every other carry with
    `carry_drop`, and each digit is replaced by a random other digit with probability `slip`.
    """

    min_digits: int = 2
    max_digits: int = 3
    first_carry_drop: float = 0.6
    carry_drop: float = 0.3
    slip: float = 0.15

    def sample_prompt(self, rng: random.Random) -> str:
        lo, hi = 10 ** (self.min_digits - 1), 10**self.max_digits - 1
        return f"{rng.randint(lo, hi)}+{rng.randint(lo, hi)}="

    def noisy_target(self, prompt: str, rng: random.Random) -> str:
        a, b = operands(prompt)
        width = len(str(max(a, b))) + 1
        drop = [rng.random() < (self.first_carry_drop if i == 0 else self.carry_drop) for i in range(width)]
        correct = add_with_slips(a, b, [False] * width, {})
        slips = {
            i: (int(d) + rng.randint(1, 9)) % 10 for i, d in enumerate(reversed(correct)) if rng.random() < self.slip
        }
        return add_with_slips(a, b, drop, slips)


def window(prompt: str) -> list[str]:
    """The answers the world's mistakes produce (exact evaluation): the sum with any set of
    carries dropped, and the truth or its first-carry-dropped version with one digit slipped."""
    a, b = operands(prompt)
    width = len(str(max(a, b))) + 1
    drops = [[bool(m >> i & 1) for i in range(width)] for m in range(2**width)]
    out = [add_with_slips(a, b, d, {}) for d in drops]
    for base in (out[0], out[1]):  # no carry dropped; the first carry dropped
        for i, d in enumerate(reversed(base)):
            out += [add_with_slips(a, b, drops[out.index(base)], {i: x}) for x in range(10) if x != int(d)]
    return [x for x in dict.fromkeys(out) if x == "0" or not x.startswith("0")]


def held_out(task: DigitsTask, eval_prompts: int, eval_seed: int) -> list[str]:
    """The held-out pool: distinct seeded prompts that SFT and training prompts never include."""
    return task.held_out(eval_prompts, eval_seed)


def unrelated_response(rng: random.Random, length: int = 4) -> str:
    """A response with no number in it (the 'easiest' negative)."""
    return "".join(rng.choice("+-*=") for _ in range(length))
