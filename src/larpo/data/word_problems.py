"""`data=word_problems`: GSM8K-format word problems that larpo makes itself (no download), for a
real pretrained model on a laptop (`model=smollm2_135m reward_model=verifier`).

Problems about people buying, sharing and giving things, each with a worked answer ending in
`#### N` as in GSM8K. `kinds` picks the problem types mixed (`add`, `sub`, `mul`, `div`: one
step; `mul_add`: two steps), `max_number` bounds the numbers of the one-step sums and differences.
With `shots: 1` each prompt is a chat of one worked example of the same kind (a fixed problem with
other names, never in the pool) before the question, which teaches the answer's form and its
`#### N` ending (measured: experiments/word_problems_calibration.py). A fixed pool is drawn from
`eval_seed`; the first `eval_prompts` are the test split and the next `validation_prompts` the
validation split (evaluated with `eval.validation>0`), both never trained on; training prompts are
sampled from the rest with the run's seed. `python -m larpo.data.word_problems out.jsonl` writes the pool as a
GSM8K JSONL file (question / answer) for use elsewhere.
"""

from __future__ import annotations

import json
import random
import sys

from larpo.data.answers import answers_match
from larpo.data.contract import Source
from larpo.fields import ConfigError

NAMES = ["Leo", "Mia", "Sam", "Ava", "Noah", "Ivy", "Omar", "Zoe", "Ken", "Lila", "Raj", "Nora"]
THINGS = ["notebooks", "apples", "stickers", "marbles", "pencils", "cookies", "stamps", "books"]
KINDS = ("add", "mul", "sub", "div", "mul_add")


def _problem(kind: str, rng: random.Random, hi: int, name: str, other: str, thing: str) -> tuple[str, str]:
    """One (question, worked answer) of `kind`; `hi` bounds the numbers of sums and differences."""
    if kind == "add":
        a, b = rng.randint(2, hi), rng.randint(2, hi)
        q = f"{name} has {a} {thing}. {other} gives {name} {b} more. How many {thing} does {name} have now?"
        return q, f"{name} has {a} + {b} = {a + b} {thing}.\n#### {a + b}"
    if kind == "mul":
        a, b = rng.randint(2, 12), rng.randint(2, 9)
        q = f"{name} buys {a} {thing} that cost {b} dollars each. How many dollars does {name} spend?"
        return q, f"{name} spends {a} * {b} = {a * b} dollars.\n#### {a * b}"
    if kind == "sub":
        b = rng.randint(2, hi - 1)
        a = rng.randint(b + 1, 2 * hi)
        q = f"{name} had {a} {thing} and gave {b} of them to {other}. How many {thing} does {name} have left?"
        return q, f"{name} has {a} - {b} = {a - b} {thing} left.\n#### {a - b}"
    if kind == "div":
        each, friends = rng.randint(2, 12), rng.randint(2, 6)
        total = each * friends
        q = f"{name} shares {total} {thing} equally among {friends} friends. How many {thing} does each friend get?"
        return q, f"Each friend gets {total} / {friends} = {each} {thing}.\n#### {each}"
    if kind == "mul_add":
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
        q = (
            f"{name} buys {a} boxes of {thing} with {b} {thing} in each box, and then finds {c} more. "
            f"How many {thing} does {name} have?"
        )
        return q, f"The boxes hold {a} * {b} = {a * b} {thing}, and {a * b} + {c} = {a * b + c}.\n#### {a * b + c}"
    raise ValueError(f"unknown problem kind {kind!r}: one of {', '.join(KINDS)}")


def example(kind: str) -> tuple[str, str]:
    """The fixed worked example of a kind: names and things that no pool problem uses."""
    return _problem(kind, random.Random(f"example-{kind}"), 20, "Tom", "Ann", "pens")


def problems(n: int, seed: int, kinds: list[str] | tuple[str, ...] = KINDS, max_number: int = 40):
    """n distinct (question, worked answer, kind) triples, the same for the same arguments."""
    rng, out = random.Random(seed), {}
    while len(out) < n:
        kind = rng.choice(list(kinds))
        name, other = rng.sample(NAMES, 2)
        q, a = _problem(kind, rng, max_number, name, other, rng.choice(THINGS))
        out.setdefault(q, (a, kind))
    return [(q, a, kind) for q, (a, kind) in out.items()]


def prompt(question: str, kind: str, shots: int) -> str:
    """The prompt the policy sees: the question alone, or (shots=1) a chat whose first turns are
    the kind's worked example (JSON messages, as chat-format data)."""
    if not shots:
        return question
    q, a = example(kind)
    turns = [{"role": "user", "content": q}, {"role": "assistant", "content": a}, {"role": "user", "content": question}]
    return json.dumps(turns)


def word_problems(
    pool: int,
    prompts_per_iteration: int,
    eval_prompts: int,
    eval_seed: int,
    seed: int,
    kinds: list[str] | tuple[str, ...] = KINDS,
    max_number: int = 40,
    shots: int = 0,
    validation_prompts: int = 0,
) -> Source:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(
            "data.kinds",
            list(kinds),
            f"unknown problem kind {unknown[0]!r}" if unknown else "is empty",
            f"use some of {', '.join(KINDS)}",
        )
    triples = problems(pool, eval_seed, kinds, max_number)
    prompts = [prompt(q, kind, shots) for q, _, kind in triples]
    answers = {p: a for p, (_, a, _) in zip(prompts, triples, strict=True)}
    held_out, validation = prompts[:eval_prompts], prompts[eval_prompts : eval_prompts + validation_prompts]
    rest = prompts[eval_prompts + validation_prompts :]
    train = random.Random(seed).sample(rest, min(prompts_per_iteration, len(rest)))
    return Source(
        train,
        held_out,
        reference=answers.get,
        judge=lambda p, r: float(answers_match(r, answers[p])),
        report={"lines_read": 0, "skipped_lines": []},
        validation=validation or None,
    )


if __name__ == "__main__":  # python -m larpo.data.word_problems out.jsonl [n] [seed]
    n, s = (int(sys.argv[2]) if len(sys.argv) > 2 else 1000), (int(sys.argv[3]) if len(sys.argv) > 3 else 12345)
    with open(sys.argv[1], "w") as f:
        for q, a, _ in problems(n, s):
            f.write(json.dumps({"question": q, "answer": a}) + "\n")
