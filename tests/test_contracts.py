"""Every shipped option satisfies its extension point's Protocol: objectives `ObjectiveFn`,
reward models `RewardModel`, negatives `Strategy`, generators `Generator`, data sources return
a `Source`. Options that need a package or a model are checked on their class; the others are
built and checked with isinstance."""

import inspect
import typing
from pathlib import Path

import pytest
from helpers.configs import CONF
from hydra.utils import get_object
from omegaconf import OmegaConf

from larpo.data.contract import Source
from larpo.evaluation.contract import PolicyEvaluator
from larpo.generation.contract import Generator
from larpo.negatives.contract import Strategy
from larpo.objectives.contract import ObjectiveFn
from larpo.rewards.contract import RewardContext, RewardModel


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


def target(group: str, name: str):
    """The code an option names: its `_target_` (the option's own or its base's)."""
    node = OmegaConf.load(Path(CONF) / group / f"{name}.yaml")
    while "_target_" not in node:  # an option that only states what differs from its base
        (base,) = [d for d in node.defaults if d != "_self_"]
        node = OmegaConf.merge(OmegaConf.load(Path(CONF) / group / f"{base}.yaml"), node)
    return get_object(node._target_)


def members(protocol) -> set[str]:
    """What a Protocol asks for: its annotated attributes and its methods."""
    methods = {n for n, v in vars(protocol).items() if callable(v) and (n == "__call__" or not n.startswith("_"))}
    return set(protocol.__annotations__) | methods


def declares(cls, name: str) -> bool:
    """A class provides `name`: as a class attribute or method, or set on self in __init__."""
    return hasattr(cls, name) or name in cls.__init__.__code__.co_names


def test_every_group_with_a_contract_has_options_and_the_protocols_ask_for_something():
    assert {len(options(g)) > 0 for g in ("objective", "reward_model", "negatives", "data", "generator")} == {True}
    assert members(RewardModel) == {"list_relative", "score"}
    assert members(Strategy) == {"temperature", "uses_reference", "source", "foreign", "select"}
    assert members(Generator) == {"tokens", "seconds", "sequences", "truncated", "__call__"}
    assert members(PolicyEvaluator) == {"prompts", "set_baseline", "state", "load_state", "__call__", "sharpened"}


def test_the_evaluators_a_run_composes_satisfy_the_evaluation_contract():
    from larpo.evaluation.evaluator import Evaluator, SplitEvaluator
    from larpo.evaluation.judged import JudgeEvaluator, WithJudge

    for cls in (Evaluator, SplitEvaluator, WithJudge):
        assert {m for m in members(PolicyEvaluator) if not declares(cls, m)} == set(), cls
    gold = Evaluator(
        ["1+1="], lambda p, r: float(r == "2"), lambda p: "2", generator=None, k=1, temperature=1.0, seed=0
    )
    assert isinstance(gold, PolicyEvaluator) and gold.prompts == ["1+1="]
    assert isinstance(SplitEvaluator(gold, gold), PolicyEvaluator)
    assert isinstance(WithJudge(gold, JudgeEvaluator(["1+1="], None, None, 1, 1.0, 0)), PolicyEvaluator)


@pytest.mark.parametrize("name", options("objective"))
def test_objectives_satisfy_the_objective_contract(name):
    fn = target("objective", name)
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params[:5]] == ["logps", "ref_logps", "mask", "lengths", "rewards"]
    assert params[3].default is None and params[4].default is None
    assert all(p.kind is p.KEYWORD_ONLY for p in params[5:])  # hyperparameters are keyword-only
    assert isinstance(fn, ObjectiveFn)


@pytest.mark.parametrize("name", options("negatives"))
def test_negatives_strategies_satisfy_the_strategy_contract(name):
    node = OmegaConf.load(Path(CONF) / "negatives" / f"{name}.yaml")
    strategy = target("negatives", name)(temperature=node.get("temperature"))
    assert isinstance(strategy, Strategy)


@pytest.mark.parametrize("name", options("generator"))
def test_generators_satisfy_the_generator_contract(name):
    cls = target("generator", name)
    assert {m for m in members(Generator) if not declares(cls, m)} == set()
    if name == options("generator")[0]:  # hf: built here
        assert isinstance(cls(), Generator)


@pytest.mark.parametrize("name", options("reward_model"))
def test_reward_models_satisfy_the_reward_model_contract(name):
    built = target("reward_model", name)
    cls = typing.get_type_hints(built)["return"] if inspect.isfunction(built) else built
    assert {m for m in members(RewardModel) if not declares(cls, m)} == set()
    assert "context" in inspect.signature(built).parameters  # built with the run's RewardContext
    if name in ("judge", "verifier"):  # the others load a model or a package
        source = Source(["1+1="], [], reference=lambda p: "2", judge=lambda p, r: float(r == "2"))
        model = built(context=RewardContext(source, "", "", 0, progress=False))
        assert isinstance(model, RewardModel)
        assert model.score(["1+1="], [["2", "3"]]) == [[1.0, 0.0]]


@pytest.mark.parametrize("name", options("data"))
def test_data_sources_return_a_source(name):
    fn = target("data", name)
    assert typing.get_type_hints(fn)["return"] is Source
    assert {"prompts_per_iteration", "seed"} <= set(inspect.signature(fn).parameters)
