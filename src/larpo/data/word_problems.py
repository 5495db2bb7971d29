"""`data=word_problems`: GSM8K-format word problems that larpo makes itself (no download), for a
real pretrained model on a laptop (`model=smollm2_135m reward_model=verifier`).

One- and two-step problems about people buying, sharing and giving things, each with a worked
answer ending in `#### N` as in GSM8K. A fixed pool is drawn from `eval_seed`; the first
`eval_prompts` are the test split, never trained on; training prompts are sampled from the rest
with the run's seed. `python -m larpo.data.word_problems out.jsonl` writes the pool as a GSM8K
JSONL file (question / answer) for use elsewhere.
"""

from __future__ import annotations

import json
import random
import sys

from larpo.data.answers import answers_match
from larpo.data.contract import Source

NAMES = ["Leo", "Mia", "Sam", "Ava", "Noah", "Ivy", "Omar", "Zoe", "Ken", "Lila", "Raj", "Nora"]
THINGS = ["notebooks", "apples", "stickers", "marbles", "pencils", "cookies", "stamps", "books"]


def _problem(rng: random.Random) -> tuple[str, str]:
    name, other = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    kind = rng.randrange(5)
    if kind == 0:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        q = f"{name} has {a} {thing}. {other} gives {name} {b} more. How many {thing} does {name} have now?"
        return q, f"{name} has {a} + {b} = {a + b} {thing}.\n#### {a + b}"
    if kind == 1:
        a, b = rng.randint(2, 12), rng.randint(2, 9)
        q = f"{name} buys {a} {thing} that cost {b} dollars each. How many dollars does {name} spend?"
        return q, f"{name} spends {a} * {b} = {a * b} dollars.\n#### {a * b}"
    if kind == 2:
        b, a = rng.randint(2, 30), rng.randint(31, 80)
        q = f"{name} had {a} {thing} and gave {b} of them to {other}. How many {thing} does {name} have left?"
        return q, f"{name} has {a} - {b} = {a - b} {thing} left.\n#### {a - b}"
    if kind == 3:
        each, friends = rng.randint(2, 12), rng.randint(2, 6)
        total = each * friends
        q = f"{name} shares {total} {thing} equally among {friends} friends. How many {thing} does each friend get?"
        return q, f"Each friend gets {total} / {friends} = {each} {thing}.\n#### {each}"
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
    q = (
        f"{name} buys {a} boxes of {thing} with {b} {thing} in each box, and then finds {c} more. "
        f"How many {thing} does {name} have?"
    )
    return q, f"The boxes hold {a} * {b} = {a * b} {thing}, and {a * b} + {c} = {a * b + c}.\n#### {a * b + c}"


def problems(n: int, seed: int) -> list[tuple[str, str]]:
    """n distinct (question, worked answer) pairs, the same for the same seed."""
    rng, out = random.Random(seed), {}
    while len(out) < n:
        q, a = _problem(rng)
        out.setdefault(q, a)
    return list(out.items())


def word_problems(pool: int, prompts_per_iteration: int, eval_prompts: int, eval_seed: int, seed: int) -> Source:
    pairs = problems(pool, eval_seed)
    answers = dict(pairs)
    held_out = [q for q, _ in pairs[:eval_prompts]]
    rest = [q for q, _ in pairs[eval_prompts:]]
    train = random.Random(seed).sample(rest, min(prompts_per_iteration, len(rest)))
    return Source(
        train,
        held_out,
        reference=answers.get,
        judge=lambda p, r: float(answers_match(r, answers[p])),
        report={"lines_read": 0, "skipped_lines": []},
    )


if __name__ == "__main__":  # python -m larpo.data.word_problems out.jsonl [n] [seed]
    n, s = (int(sys.argv[2]) if len(sys.argv) > 2 else 1000), (int(sys.argv[3]) if len(sys.argv) > 3 else 12345)
    with open(sys.argv[1], "w") as f:
        for q, a in problems(n, s):
            f.write(json.dumps({"question": q, "answer": a}) + "\n")
