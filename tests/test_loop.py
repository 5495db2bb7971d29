"""The LarPO loop on the micro configuration: two real iterations, then assertions on what it did."""

import copy
import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from larpo.candidates import read_pool
from larpo.clock import peak_rss_mb
from larpo.negatives.strategies import OtherPrompt
from larpo.run.build import build
from larpo.run.fit import fit
from larpo.sequences import collate, response_logps


class Probe(pl.Callback):
    """Records, at the start of every epoch, the training lists and a copy of the policy (the
    behaviour policy of the iteration), and counts policy forwards inside training steps."""

    def __init__(self):
        self.snapshots, self.in_step, self.step_forwards, self.steps = [], False, [], 0

    def setup(self, trainer, pl_module, stage):
        def hook(module, args, kwargs):
            if self.in_step:
                self.step_forwards.append(torch.is_grad_enabled())

        pl_module.policy.register_forward_pre_hook(hook, with_kwargs=True)

    def on_train_epoch_start(self, trainer, pl_module):
        lists = trainer.datamodule.lists
        self.snapshots.append((copy.deepcopy(pl_module.policy).eval(), lists))

    def on_train_batch_start(self, *args):
        self.in_step, self.steps = True, self.steps + 1

    def on_train_batch_end(self, *args):
        self.in_step = False


def pool(run_dir, s):
    lists, skipped = read_pool(run_dir / "pool" / f"iteration_{s}.jsonl")
    assert skipped == []
    return {lst.prompt: lst for lst in lists}


@pytest.fixture(scope="module")
def memory_all(tmp_path_factory, cache_dir):
    from helpers.configs import MICRO, compose_cfg

    tmp = tmp_path_factory.mktemp("memory_all")
    cfg = compose_cfg([*MICRO, f"model.cache_dir={cache_dir}", "candidate_list.memory=all", "logger=wandb"], tmp)
    probe = Probe()
    summary = fit(build(cfg, callbacks=(probe,)))
    return tmp / "run", summary, probe


def test_summary_follows_the_contract(memory_all):
    run_dir, summary, _ = memory_all
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["final"] == summary["final"]
    assert [h["iteration"] for h in on_disk["history"]] == [0, 1, 2]
    assert on_disk["history"][0]["win_rate_vs_sft"] == 0.5  # the SFT policy against itself
    for key in [
        "win_rate_vs_sft",
        "gold_reward",
        "accuracy_greedy",
        "accuracy_sampled",
        "pass_at_1",
        "pass_at_4",
        "ndcg",
        "ranking_accuracy",
    ]:
        assert 0.0 <= on_disk["final"][key] <= 1.0, key
    p = [on_disk["final"][f"pass_at_{n}"] for n in range(1, 5)]
    assert p == sorted(p)  # Recall@N grows with N
    assert {"generation", "scoring", "reference", "training", "evaluation"} <= set(on_disk["timing"])
    assert on_disk["config"]["candidate_list"]["memory"] == "all"
    assert on_disk["throughput"]["generation_tokens_per_s"] > 0 and on_disk["throughput"]["training_tokens_per_s"] > 0
    memory = on_disk["memory"]
    assert 0 < memory["peak_rss_mb"] <= peak_rss_mb() + 0.1  # this process's peak so far
    assert min(memory["rise_mb"].values()) >= 0 and set(memory["rise_mb"]) <= {*on_disk["timing"], "startup"}
    assert sum(memory["rise_mb"].values()) == pytest.approx(memory["peak_rss_mb"], abs=0.5)


def test_the_phase_that_raises_the_peak_memory_is_named():
    """In a fresh process, 300 MB written inside the generation phase are charged to generation
    (less the headroom between the peak before it and the memory then resident), and nothing to
    the evaluation phase that allocated less than the peak already held."""
    code = """
import json
from larpo.clock import PhaseClock, peak_rss_mb
clock = PhaseClock()
resident = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmRSS:")) / 1024
clock.rss_rise["headroom"] = peak_rss_mb() - resident
with clock.phase("generation"):
    big = bytearray(b"x") * (300 * 2**20)
del big
with clock.phase("evaluation"):
    small = bytearray(b"x") * (50 * 2**20)
print(json.dumps(clock.rss_rise))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rise = json.loads(out.splitlines()[-1])
    assert rise["generation"] == pytest.approx(max(0.0, 300 - rise["headroom"]), abs=20)
    assert rise["evaluation"] == 0


def test_memory_all_holds_both_iterations_deduplicated(memory_all):
    run_dir = memory_all[0]
    first, second = pool(run_dir, 1), pool(run_dir, 2)
    assert first.keys() == second.keys()
    both = 0
    for prompt, lst in second.items():
        assert len(lst.responses) == len(set(lst.responses))  # deduplicated
        assert set(first[prompt].responses) <= set(lst.responses)  # iteration 1 kept in memory
        new = {r for r, s in zip(lst.responses, lst.sampled_in) if s == 2}
        assert set(lst.responses) == set(first[prompt].responses) | new
        assert lst.rewards == sorted(lst.rewards, reverse=True)  # ranked best first
        both += {1, 2} <= set(lst.sampled_in)
    assert both > 0


def test_reference_logps_equal_a_fresh_computation_with_the_behaviour_policy(memory_all):
    _, summary, probe = memory_all
    assert len(probe.snapshots) == 2
    for behaviour, lists in probe.snapshots:
        seqs = [(it.prompt_ids, r) for it in lists for r in it.response_ids]
        fresh = response_logps(behaviour, collate(seqs, 0))
        stored = torch.tensor([lp for it in lists for lp in it.ref_logps])
        assert torch.allclose(fresh, stored, atol=1e-4)
    # the two iterations had different behaviour policies: training changed the policy
    a, b = (dict(m.named_parameters()) for m, _ in probe.snapshots)
    assert any(not torch.equal(a[n], b[n]) for n in a)
    # the reference model scored each kept candidate exactly once per iteration
    assert summary["reference_forwards"] == sum(len(it.response_ids) for _, ls in probe.snapshots for it in ls)


def test_no_reference_forward_inside_training_steps(memory_all):
    probe = memory_all[2]
    # one policy forward per step (all candidates of all lists at once), always with gradients
    assert len(probe.step_forwards) == probe.steps > 0
    assert all(probe.step_forwards)


def test_wandb_offline_run_holds_the_metrics(memory_all):
    run_dir, summary, _ = memory_all
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # the offline transaction log is protobuf: keys and JSON-encoded values appear verbatim
    raw = next(runs[0].glob("run-*.wandb")).read_bytes()
    for key in ["eval/accuracy_sampled", "eval/win_rate_vs_sft", "train/loss", "final/win_rate_vs_sft"]:
        assert key.encode() in raw, key
    assert json.dumps(summary["final"]["accuracy_sampled"]).encode() in raw
    assert list((runs[0] / "files" / "media" / "table").glob("ranked_lists_*.table.json"))


def test_iteration_two_trains_on_iteration_two_samples(micro):
    probe = Probe()
    summary = fit(build(micro("candidate_list.memory=current"), callbacks=(probe,)))
    run_dir = __import__("pathlib").Path(summary["config"]["run_dir"])
    second = pool(run_dir, 2)
    assert all(set(lst.sampled_in) == {2} for lst in second.values())
    _, lists = probe.snapshots[1]
    from larpo.worlds.arithmetic import build_tokenizer

    tok = build_tokenizer()
    for it in lists:
        prompt = tok.decode(it.prompt_ids, skip_special_tokens=True)
        responses = [tok.decode(r, skip_special_tokens=True) for r in it.response_ids]
        kept = [second[prompt].responses[i] for i in second[prompt].kept]
        assert responses == kept


def test_arms_of_one_seed_train_their_first_iteration_on_the_same_samples(micro, tmp_path):
    """Shared lists: two objectives with k=4 rank the very same samples of the same prompts at
    iteration 1 (GRPO's group keeps duplicates, the ranking objectives' lists are de-duplicated),
    and DPO on pairs (k=2) ranks the first two of those samples."""

    def first_pool(name, *overrides):
        cfg = micro("iterations=1", *overrides)
        cfg.run_dir = str(tmp_path / name)
        fit(build(cfg))
        return pool(tmp_path / name, 1)

    listmle = first_pool("listmle", "objective=listmle", "candidate_list.size=4")
    grpo = first_pool("grpo", "objective=grpo", "candidate_list.size=4")
    pair = first_pool("pair", "objective=pairwise", "candidate_list.size=2")
    assert set(listmle) == set(grpo) == set(pair) and len(listmle) == 24
    for prompt, lst in grpo.items():
        assert len(lst) <= 4  # the group: the 4 samples less empty answers, duplicates kept
        assert set(listmle[prompt].responses) == set(lst.responses)
        assert set(pair[prompt].responses) <= set(lst.responses)
    assert sum(len(lst) for lst in listmle.values()) > 48  # samples differ within lists (dedupe: test_collaborators)


def test_easy_negatives_never_come_from_the_same_prompt():
    rng = random.Random(0)
    prompts = [f"{i}+1=" for i in range(6)]
    samples = [[str(i % 3), str(i % 2), "7"] for i in range(6)]  # overlapping answers across prompts
    out = OtherPrompt().foreign(prompts, samples, 2, rng, None)
    for own, picked in zip(samples, out):
        assert picked and not set(picked) & set(own)


def test_easy_and_easiest_runs(micro, tmp_path):
    for strategy, source in [("easy", "other_prompt"), ("easiest", "unrelated")]:
        cfg = micro(f"negatives={strategy}", "objective=pairwise", "iterations=1")
        cfg.run_dir = str(tmp_path / strategy)
        summary = fit(build(cfg))
        run_dir = __import__("pathlib").Path(summary["config"]["run_dir"])
        for lst in pool(run_dir, 1).values():
            own = {r for r, s in zip(lst.responses, lst.sources) if s == "policy"}
            kept_sources = [lst.sources[i] for i in lst.kept]
            if lst.kept:
                assert kept_sources[0] in ("reference", "policy") and source in kept_sources
            for i in lst.kept:
                if lst.sources[i] == source:
                    assert lst.responses[i] not in own


def test_temperatures_diverse_and_scheduled(micro):
    r = build(micro("candidate_list.temperatures=[1.0,1.0,0.5,0.5]", "objective=pairwise", "iterations=1"))
    assert r.loop.sampler.temperatures_of(1) == [1.0, 1.0, 0.5, 0.5]
    summary = fit(r)
    run_dir = __import__("pathlib").Path(summary["config"]["run_dir"])
    temps = {t for lst in pool(run_dir, 1).values() for t in lst.temperatures}
    assert temps == {0.5, 1.0}  # both temperatures sampled and ranked together
    scheduled = build(micro("candidate_list.schedule=[1.2,0.8]", "candidate_list.size=3", "objective=pairwise"))
    assert scheduled.loop.sampler.temperatures_of(1) == [1.2] * 3
    assert scheduled.loop.sampler.temperatures_of(2) == [0.8] * 3
    assert scheduled.loop.sampler.temperatures_of(5) == [0.8] * 3  # the last entry holds on
    hardest = build(micro("negatives=hardest", "objective=pairwise"))
    assert hardest.loop.sampler.temperatures_of(1) == [0.7] * 4


def test_reference_initial_keeps_the_sft_policy(micro):
    probe = Probe()
    r = build(micro("reference=initial"), callbacks=(probe,))
    sft = copy.deepcopy(r.module.policy).eval()
    fit(r)
    behaviour, lists = probe.snapshots[1]
    seqs = [(it.prompt_ids, x) for it in lists for x in it.response_ids]
    stored = torch.tensor([lp for it in lists for lp in it.ref_logps])
    assert torch.allclose(response_logps(sft, collate(seqs, 0)), stored, atol=1e-4)
    assert not torch.allclose(response_logps(behaviour, collate(seqs, 0)), stored, atol=1e-4)


def test_warmup_decay_and_weight_decay_reach_the_optimizer(micro):
    """`optimizer.*` is applied, not ignored: AdamW's weight decay, a warm-up from 0 and a linear
    decay to 0 at the run's estimated last step (6 here: 2 iterations x 1 epoch x 3 batches)."""
    from larpo.run.build import build
    from larpo.run.fit import fit

    r = build(micro("optimizer.weight_decay=0.01", "optimizer.warmup_ratio=0.5", "optimizer.schedule=linear"))
    assert (r.module.schedule.warmup, r.module.schedule.total) == (3, 6)
    fit(r)
    group = r.trainer.optimizers[0].param_groups[0]
    assert group["weight_decay"] == 0.01
    steps = r.trainer.global_step
    assert 0 < steps <= 6 and group["lr"] == pytest.approx(r.cfg.lr * r.module.schedule(steps))


def test_training_signals_are_logged_even_in_a_short_run(micro, tmp_path):
    """Each epoch logs the means of the training signals, so a run shorter than
    log_every_n_steps still has them; the loss is the ranking term plus sft_weight x the NLL term."""
    import csv

    from larpo.run.build import build
    from larpo.run.fit import fit

    r = build(micro("logger=csv", "trainer.log_every_n_steps=50", "sft_weight=2"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = fit(r)
    # every logged value names its batch size: Lightning need not guess it (and warn every step)
    assert not [w for w in caught if "batch_size" in str(w.message)]
    # per iteration: every sample's mean reward and mean length in tokens (duplicates and empty
    # answers included, as generated; the pool file keeps distinct non-empty ones)
    stats = summary["history"][-1]["list_stats"]
    samples = [(resp, w) for lst in r.loop.sampled.values() for resp, w in zip(lst.responses, lst.rewards)]
    assert len(samples) == 24 * 4  # every prompt's k samples
    assert stats["sample_reward"] == pytest.approx(sum(w for _, w in samples) / len(samples))
    lengths = [len(r.loop.tokenizer(resp, add_special_tokens=False)["input_ids"]) for resp, _ in samples]
    assert stats["sample_tokens"] == pytest.approx(sum(lengths) / len(lengths))
    pool, _ = read_pool(Path(summary["config"]["run_dir"]) / "pool" / "iteration_2.jsonl")
    kept = [lst for lst in pool if lst.kept]

    def tokens(lst, i):  # the response's tokens and the EOS the policy generated
        return len(r.loop.tokenizer(lst.responses[i], add_special_tokens=False)["input_ids"]) + lst.ended(i)

    assert stats["kept_top_tokens"] == pytest.approx(sum(tokens(x, x.kept[0]) for x in kept) / len(kept))
    assert stats["kept_bottom_tokens"] == pytest.approx(sum(tokens(x, x.kept[-1]) for x in kept) / len(kept))
    rows = list(csv.DictReader(open(next((tmp_path / "run" / "csv").rglob("metrics.csv")))))
    epochs = [row for row in rows if row.get("train/loss_epoch")]
    assert len(epochs) == 2  # 2 iterations x 1 epoch
    names = ["loss", "nll_top", "ranking_loss", "reward_margin", "reward_top", "reward_bottom", "logp_top"]
    names += ["logp_bottom", "pair_accuracy", "logratio", "grad_norm"]
    for row in epochs:
        values = {n: float(row[f"train/{n}_epoch"]) for n in names}
        assert values["loss"] == pytest.approx(values["ranking_loss"] + 2 * values["nll_top"], rel=1e-4, abs=1e-5)
        assert values["reward_margin"] == pytest.approx(values["reward_top"] - values["reward_bottom"], abs=1e-5)
        assert values["grad_norm"] > 0 and 0 <= values["pair_accuracy"] <= 1


def test_answers_cut_at_max_new_tokens_are_counted_and_warned_about(micro, caplog):
    """With generator.max_new_tokens=2 every answer of two characters or more is cut before its
    end-of-sequence token; the iteration's `truncated` share counts at least those (a cut answer
    that drew a special token decodes shorter), and the log says to raise the cap."""
    import logging

    from larpo.run.build import build
    from larpo.run.fit import fit

    r = build(micro("generator.max_new_tokens=2", "iterations=1"))
    with caplog.at_level(logging.WARNING, logger="larpo"):
        summary = fit(r)
    samples = [resp for lst in r.loop.sampled.values() for resp in lst.responses]
    cut = [len(r.loop.tokenizer(resp, add_special_tokens=False)["input_ids"]) == 2 for resp in samples]
    share = summary["history"][-1]["list_stats"]["truncated"]
    assert sum(cut) / len(cut) <= share <= 1 and share > 0.1
    assert "hit generator.max_new_tokens=2 before ending" in caplog.text
    # each cut sample is marked as such, in memory and in the pool file, and counted exactly
    flags = [not lst.ended(i) for lst in r.loop.sampled.values() for i in range(len(lst))]
    assert sum(flags) / len(flags) == pytest.approx(share) and sum(flags) >= sum(cut)
    pool, _ = read_pool(Path(summary["config"]["run_dir"]) / "pool" / "iteration_1.jsonl")
    for lst in pool:  # the pool's lists, cleaned and de-duplicated, keep each sample's flag
        sampled = r.loop.sampled[lst.prompt]
        cut_texts = {x for i, x in enumerate(sampled.responses) if not sampled.ended(i)}
        assert [not lst.ended(i) for i in range(len(lst))] == [x in cut_texts for x in lst.responses]
    assert sum(sum(lst.truncated) for lst in pool) > 0
    # ... and trained without an EOS it never generated; the answers that ended keep theirs
    eos = r.loop.tokenizer.eos_token_id
    for lst in pool:
        for i, ids in enumerate(r.loop.reference.tokenised([lst])[0].response_ids):
            assert (ids[-1] == eos) == lst.ended(i)


def test_under_mixed_precision_the_reference_scores_as_the_training_forward_does(micro, tmp_path):
    """trainer.precision=bf16-mixed: the reference (the behaviour policy itself) is scored under
    the same autocast as training, so the first step's log-ratio and margin are 0 (in float32 the
    reference gave -2.4e-4 on this policy)."""
    import csv

    r = build(micro("logger=csv", "trainer.log_every_n_steps=1", "trainer.precision=bf16-mixed", "iterations=1"))
    fit(r)
    rows = list(csv.DictReader(open(next((tmp_path / "run" / "csv").rglob("metrics.csv")))))
    steps = [row for row in rows if row.get("train/logratio_step")]
    assert float(steps[0]["train/logratio_step"]) == 0.0 and float(steps[0]["train/reward_margin_step"]) == 0.0
    assert any(float(row["train/logratio_step"]) != 0.0 for row in steps[1:])  # then the policy moves
