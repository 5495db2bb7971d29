"""The run's collaborators built on their own, with fakes: the ranker on constructed lists, the
candidate sampler with a scripted generator, and the loop's iteration plan with stand-ins for
every phase. The end-to-end runs are in test_loop.py."""

import copy
from types import SimpleNamespace

import pytest
from helpers.configs import compose_cfg
from helpers.fakes import ScriptedGenerator, TableReward, candidate_list

from larpo.clock import PhaseClock
from larpo.data.contract import Source
from larpo.negatives.strategies import SamePrompt, TopAndBottom, Unrelated
from larpo.parallel.shard import Shard
from larpo.run.diagnostics import mostly_dropped
from larpo.run.iteration import Evaluation, Iteration
from larpo.run.loop import LarpoLoop, Plan
from larpo.run.ranking import Ranker, Truncation
from larpo.run.sampling import CandidateSampler, SamplingSpec

# --- the ranker ---------------------------------------------------------------------------------


def test_ranker_scores_ranks_and_keeps_top_and_bottom():
    table = {("p", r): w for r, w in zip("abcde", [0.2, 0.9, 0.5, 0.1, 0.5])}
    lst = candidate_list("p", list("abcde"), [])
    ranker = Ranker(TableReward(table), TopAndBottom(), "current", positives=1, negatives=2)
    ranker.score([lst], Shard())
    assert lst.rewards == [0.2, 0.9, 0.5, 0.1, 0.5]
    out = ranker.select({"p": lst})
    (ranked,) = out.pool
    assert ranked.responses == ["b", "c", "e", "a", "d"]  # best first; the tie c=e keeps its order
    assert ranked.kept == [0, 3, 4] and out.kept[0].responses == ["b", "a", "d"]
    assert out.kept[0].rewards == [0.9, 0.2, 0.1] and out.dropped == {}


def test_ranker_drops_tied_short_and_empty_lists_and_counts_why():
    lists = {
        "tied": candidate_list("tied", ["x", "y", "z"], [0.5, 0.5, 0.5]),
        "short": candidate_list("short", ["x", " "], [1.0, 0.0]),  # the empty response goes first
        "good": candidate_list("good", ["x", "y"], [0.0, 1.0]),
    }
    out = Ranker(None, TopAndBottom(), "current", 1, 1).select(lists)
    assert [lst.prompt for lst in out.kept] == ["good"] and out.kept[0].responses == ["y", "x"]
    assert out.dropped == {"all_tied": 1, "too_few_candidates": 1, "empty_response": 1}
    assert [lst.prompt for lst in out.pool] == ["tied", "short", "good"]  # the pool keeps every list
    assert [lst.kept for lst in out.pool] == [[], [], [0, 1]]


def test_samples_cut_without_eos_are_dropped_or_penalised_before_ranking():
    """The best-scored sample was cut at the token cap: by default it stays on top (and is marked);
    `drop_truncated` leaves it out (counted); `missing_eos_penalty` lowers its reward below the
    others' before ranking, as TRL's missing_eos_penalty does."""

    def fresh():
        lst = candidate_list("p", ["cut off mid", "a", "b"], [0.9, 0.5, 0.2])
        lst.truncated = [True, False, False]
        return {"p": lst}

    plain = Ranker(None, TopAndBottom(), "current", 1, 1)
    keep = plain.select(*plain.admit(fresh()))
    assert keep.pool[0].responses[0] == "cut off mid" and keep.pool[0].truncated == [True, False, False]
    assert keep.kept[0].truncated == [True, False] and not keep.kept[0].ended(0) and keep.kept[0].ended(1)
    dropper = Ranker(None, TopAndBottom(), "current", 1, 1, truncation=Truncation(drop=True))
    drop = dropper.select(*dropper.admit(fresh()))
    assert drop.pool[0].responses == ["a", "b"] and drop.pool[0].truncated == [] and drop.dropped == {"truncated": 1}
    penaliser = Ranker(None, TopAndBottom(), "all", 1, 1, truncation=Truncation(penalty=1.0))
    admitted, counts = penaliser.admit(fresh())
    penalty = penaliser.select(admitted, counts)
    assert penalty.pool[0].responses == ["a", "b", "cut off mid"]
    assert penalty.pool[0].rewards == pytest.approx([0.5, 0.2, -0.1]) and penalty.pool[0].truncated == [
        False,
        False,
        True,
    ]
    assert penalty.kept[0].responses == ["a", "cut off mid"]
    # the memory holds admitted samples: merged again at a later iteration, none is penalised twice
    again = penaliser.select(penaliser.merge([{}, admitted]))
    assert again.pool[0].rewards == pytest.approx([0.5, 0.2, -0.1]) and again.dropped == {}


def test_ranker_merges_memory_newest_first_and_rescores_only_list_relative_models():
    old = candidate_list("p", ["a", "b"], [0.1, 0.2], iteration=1)
    new = candidate_list("p", ["b", "c"], [0.3, 0.4], iteration=2)
    ranker = Ranker(TableReward({}), TopAndBottom(), "all", 1, 1)
    merged = ranker.merge([{"p": old}, {"p": new}])["p"]
    assert merged.responses == ["b", "c", "a"] and merged.sampled_in == [2, 2, 1]  # b's newest copy
    assert Ranker(TableReward({}), TopAndBottom(), "current", 1, 1).merge([{"p": old}, {"p": new}])["p"] is not None
    twice = candidate_list("p", ["b", "c", "b"], [0.3, 0.4, 0.3], iteration=2)
    group = Ranker(None, TopAndBottom(), "all", 1, 1, dedupe=False).merge([{"p": old}, {"p": twice}])["p"]
    assert group.responses == ["b", "c", "b", "a", "b"]  # a GRPO group: every sample counts
    assert ranker.merge([{"p": old}, {"p": twice}])["p"].responses == ["b", "c", "a"]
    assert not ranker.rescores_merged
    pairwise = TableReward({})
    pairwise.list_relative = True
    assert Ranker(pairwise, TopAndBottom(), "all", 1, 1).rescores_merged
    assert not Ranker(pairwise, TopAndBottom(), "current", 1, 1).rescores_merged


def test_erasing_the_order_below_the_top_changes_only_the_rewards_below_the_top():
    table = {("p", r): w for r, w in zip("abcdef", [0.9, 0.9, 0.5, 0.3, 0.2, 0.1])}
    lst = candidate_list("p", list("abcdef"), [])
    plain = Ranker(TableReward(table), TopAndBottom(), "current", positives=2, negatives=3)
    erased = Ranker(TableReward(table), TopAndBottom(), "current", positives=2, negatives=3, erase_below_top=True)
    for r in (plain, erased):
        r.score([lst], Shard())
    a, b = plain.select({"p": lst}), erased.select({"p": copy.deepcopy(lst)})
    (x,), (y,) = a.kept, b.kept
    assert x.responses == y.responses == ["a", "b", "d", "e", "f"] and x.sources == y.sources  # same list, same order
    assert x.rewards == [0.9, 0.9, 0.3, 0.2, 0.1]
    assert y.rewards == pytest.approx([0.9, 0.9, 0.2, 0.2, 0.2])  # the top level kept; below it, their mean
    assert a.pool[0].rewards == b.pool[0].rewards == [0.9, 0.9, 0.5, 0.3, 0.2, 0.1]  # the pool keeps the scores
    assert a.dropped == b.dropped == {}


def test_same_prompt_strategy_puts_the_reference_first_and_only_worse_samples_below():
    lst = candidate_list("p", ["ref", "a", "b", "c"], [1.0, 1.0, 0.5, 0.2])
    lst.sources[0] = "reference"
    assert SamePrompt(0.7).select(lst, 1, 2) == [0, 2, 3]  # "a" ties the reference: not a negative


# --- the candidate sampler ----------------------------------------------------------------------


def sampler(strategy, spec, script=None):
    script = script or {"1+1=": ["2", "3"], "2+2=": ["4", "5"]}
    source = Source(list(script), [], reference=lambda p: str(eval(p[:-1])), judge=None)
    return CandidateSampler(ScriptedGenerator(script), None, source, strategy, spec), source


def test_sampler_draws_k_samples_per_prompt_at_each_temperature_with_distinct_seeds():
    s, _ = sampler(TopAndBottom(), SamplingSpec(k=4, temperature=1.0, temperatures=[1.0, 1.0, 0.5, 0.5], seed=3))
    lists = s.lists(None, iteration=2, shard=Shard())
    calls = s.generator.calls
    assert [(c["k"], c["temperature"]) for c in calls] == [(2, 1.0), (2, 0.5)]  # one call per temperature
    assert len({c["seed"] for c in calls}) == 2
    lst = lists["1+1="]
    assert lst.responses == ["2", "3", "2", "3"] and lst.temperatures == [1.0, 1.0, 0.5, 0.5]
    assert lst.sampled_in == [2] * 4 and lst.sources == ["policy"] * 4 and lst.reference == "2"
    again = sampler(TopAndBottom(), SamplingSpec(k=4, temperature=1.0, temperatures=[1.0, 1.0, 0.5, 0.5], seed=3))[0]
    again.lists(None, iteration=2, shard=Shard())
    assert [c["seed"] for c in again.generator.calls] == [c["seed"] for c in calls]  # seeded


def test_sampler_follows_the_schedule_and_a_strategys_own_temperature():
    s, _ = sampler(TopAndBottom(), SamplingSpec(k=2, temperature=1.0, schedule=[1.2, 0.8]))
    assert s.temperatures_of(1) == [1.2, 1.2] and s.temperatures_of(2) == [0.8, 0.8]
    assert s.temperatures_of(5) == [0.8, 0.8]  # the schedule's last value holds
    hard, _ = sampler(SamePrompt(0.7), SamplingSpec(k=3, temperature=1.0, schedule=[1.2]))
    assert hard.temperatures_of(1) == [0.7] * 3


def test_sampler_adds_the_reference_and_foreign_negatives_the_strategy_asks_for():
    s, _ = sampler(Unrelated(), SamplingSpec(k=2, temperature=1.0, foreign_per_list=2, seed=0))
    lst = s.lists(None, iteration=1, shard=Shard())["2+2="]
    assert lst.responses[:3] == ["4", "4", "5"] and lst.sources == [
        "reference",
        "policy",
        "policy",
        "unrelated",
        "unrelated",
    ]
    assert lst.temperatures[0] == 0.0 and all(t != t for t in lst.temperatures[3:])  # foreign: NaN (null in the pool)
    assert all(r in s.source.unrelated.__globals__["UNRELATED"] for r in lst.responses[3:])


# --- the loop's iteration plan ------------------------------------------------------------------


class Recorder:
    """Stand-ins for the loop's collaborators that record the order of the phases."""

    def __init__(self):
        self.events = []

    def sampler(self):
        rec = self

        class S:
            scored, truncated, max_new_tokens = True, None, None

            def lists(self, policy, iteration, shard):
                rec.events.append(("sample", iteration))
                return {"p": candidate_list("p", ["a", "b"], [1.0, 0.0], iteration)}

        return S()

    def evaluator(self):
        rec = self

        class E:
            k = 1

            def __call__(self, policy, tokenizer):
                rec.events.append(("evaluate",))
                return {"win_rate_vs_sft": 0.5, "accuracy_sampled": 0.5, "accuracy_greedy": 0.5, "pass_at_1": 0.5}

        return E()


class Reference:
    tokenizer, forwards, mode = None, 0, "behavior"

    def training_lists(self, kept, policy, shard):
        return [SimpleNamespace(ref_logps=[0.0] * len(lst)) for lst in kept]


def plan_loop(iterations, epochs, every, tmp_path):
    rec = Recorder()
    datamodule = SimpleNamespace(set_lists=lambda items: rec.events.append(("train_on", len(items))))
    pool = SimpleNamespace(
        write=lambda it, lists: rec.events.append(("pool", it)), write_stats=lambda it, s: None, rank=0
    )
    step = Iteration(rec.sampler(), Ranker(None, TopAndBottom(), "current", 1, 1), Reference(), pool, PhaseClock())
    evaluation = Evaluation(rec.evaluator(), None, sft_cache=None)
    loop = LarpoLoop(step, evaluation, datamodule, Plan(iterations, epochs, every, checkpoint_dir=None))
    trainer = SimpleNamespace(global_rank=0, world_size=1, logger=None, global_step=0, current_epoch=0)
    module = SimpleNamespace(full_policy=lambda: None)
    loop.on_fit_start(trainer, module)
    for epoch in range(iterations * epochs):
        trainer.current_epoch = epoch
        loop.on_train_epoch_start(trainer, module)
        loop.on_train_epoch_end(trainer, module)
    return loop, rec.events


@pytest.mark.parametrize("every", [True, False])
def test_the_loop_samples_before_each_iteration_and_evaluates_at_its_end(every, tmp_path):
    loop, events = plan_loop(iterations=3, epochs=2, every=every, tmp_path=tmp_path)
    iteration = [("sample",), ("pool",), ("train_on", 1)]
    expected = [("evaluate",)]
    for s in (1, 2, 3):
        expected += [(e[0], s) if e[0] != "train_on" else e for e in iteration]
        if every or s == 3:
            expected.append(("evaluate",))
    assert events == expected
    assert [m["iteration"] for m in loop.metrics] == ([0, 1, 2, 3] if every else [0, 3])
    assert loop.iteration == 3 and set(loop.timing) >= {"generation", "reference", "training", "evaluation"}


def test_a_loop_with_every_list_dropped_says_so():
    tied = SimpleNamespace(
        scored=True,
        truncated=None,
        lists=lambda policy, iteration, shard: {"p": candidate_list("p", ["a", "b"], [1.0, 1.0])},
    )
    ranker = Ranker(None, TopAndBottom(), "current", 1, 1)
    step = Iteration(tied, ranker, Reference(), None, PhaseClock())
    with pytest.raises(RuntimeError, match=r"all 1 lists were dropped \(\{'all_tied': 1\}\): the reward model gave"):
        step.prepare(None, 1, Shard(), "[iteration 1/1]")
    nothing = SimpleNamespace(scored=True, truncated=None, lists=lambda policy, iteration, shard: {})
    step = Iteration(nothing, ranker, Reference(), None, PhaseClock())
    with pytest.raises(RuntimeError, match="nothing to train on: there are no training prompts"):
        step.prepare(None, 1, Shard(), "[iteration 1/1]")


def test_most_lists_dropped_says_why_and_what_helps():
    """negatives=ranked on a weak policy: 13 of 16 lists all tied. The log says so, with the fix."""
    line = mostly_dropped({"all_tied": 13}, kept=3)
    assert line.startswith("13 lists dropped against 3 kept ({'all_tied': 13}): the reward model gave every")
    assert mostly_dropped({"all_tied": 2, "too_few_candidates": 1}, kept=3) is None  # not most
    assert mostly_dropped({"truncated": 40}, kept=3) is None  # candidates, not lists
    assert "raise candidate_list.size" in mostly_dropped({"too_few_candidates": 5, "all_tied": 1}, kept=1)


@pytest.mark.parametrize(("objective", "erased"), [("listmle", False), ("listmle_erased", True)])
def test_the_erased_control_is_an_objective_option_with_the_same_loss(objective, erased):
    from helpers.configs import compose_cfg

    from larpo.objectives.binding import from_config
    from larpo.run.build import build_ranker
    from larpo.shape import Shape

    cfg = compose_cfg([f"objective={objective}", "candidate_list.size=4"])
    ranker = build_ranker(cfg.objective, cfg.candidate_list, Shape.of(cfg), None, TopAndBottom())
    assert ranker.erase_below_top is erased and (ranker.positives, ranker.negatives) == (2, 2)
    assert from_config(cfg.objective).fn.func.__name__ == "listmle"


def test_the_learning_rate_schedule_and_its_step_estimate():
    """Warm-up then constant, linear or cosine decay to 0 at the run's estimated last step; the
    estimate counts every iteration's prompts, epochs, batch size and gradient accumulation."""
    from larpo.run.build import lr_schedule
    from larpo.run.module import LRSchedule

    linear = LRSchedule(warmup=10, total=110, kind="linear")
    assert [linear(s) for s in (0, 9, 10, 60, 110, 200)] == pytest.approx([0.1, 1.0, 1.0, 0.5, 0.0, 0.0])
    cosine = LRSchedule(warmup=0, total=100, kind="cosine")
    assert [cosine(s) for s in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0])
    assert LRSchedule().constant and not LRSchedule(warmup=5).constant and LRSchedule(warmup=5)(100) == 1.0

    cfg = compose_cfg(["optimizer.warmup_ratio=0.1", "optimizer.schedule=cosine", "run_dir=."])
    # 3 iterations x 2 epochs x ceil(2048 prompts / 32) batches
    assert lr_schedule(cfg) == LRSchedule(warmup=38, total=384, kind="cosine")
    cfg = compose_cfg(["trainer.accumulate_grad_batches=4", "offline=true", "run_dir=."])
    assert lr_schedule(cfg).total == 1 * 2 * 48  # one round of 3 x 2048 prompts, 192 batches, 48 steps
