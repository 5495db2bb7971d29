"""Fakes of a run's collaborators, for unit tests that build one collaborator on its own."""

from larpo.candidates import CandidateList


class ScriptedGenerator:
    """A `Generator` that answers from a script: prompt -> the texts it returns, in order, cycled.
    Records every call (prompts, k, temperature, seed)."""

    def __init__(self, script: dict[str, list[str]]):
        self.script, self.calls = script, []
        self.tokens, self.seconds, self.sequences, self.truncated = 0, 0.0, 0, 0

    def __call__(self, model, tokenizer, prompts, k, temperature, seed, desc="generate", shard=(0, 1)):
        self.calls.append({"prompts": list(prompts), "k": k, "temperature": temperature, "seed": seed})
        rank, world = shard
        out = []
        for i, p in enumerate(prompts):
            texts = self.script[p]
            out.append([texts[j % len(texts)] for j in range(k)] if i % world == rank else None)
        return out


class TableReward:
    """A `RewardModel` that looks rewards up in a table: (prompt, response) -> reward."""

    list_relative = False

    def __init__(self, table: dict[tuple[str, str], float]):
        self.table, self.calls = table, 0

    def score(self, prompts, candidates):
        self.calls += 1
        return [[self.table[(p, r)] for r in rs] for p, rs in zip(prompts, candidates, strict=True)]


def candidate_list(prompt: str, responses: list[str], rewards: list[float], iteration: int = 1) -> CandidateList:
    """A list of policy samples at T=1, as the sampler builds them."""
    n = len(responses)
    return CandidateList(prompt, list(responses), list(rewards), [1.0] * n, [iteration] * n, ["policy"] * n, iteration)
