"""Pairwise (DPO) training phase: larpo against a bare PyTorch loop and TRL's DPOTrainer.

Same model (the embedded world's 0.86M-parameter Llama, random init), same pairs (an arithmetic
prompt, its true answer, a near miss), batch 64, one epoch, CPU, lr 1e-4, beta 0.1. Each contender's
time covers tokenisation, reference log-probs (computed once, up front) and training; process start
and model loading are excluded. Median of --repeats runs, contenders interleaved.

"larpo command" is the path a user runs: the `larpo` CLI itself in its own process, with its
environment (OpenMP waits, threads) and callbacks, on the pairs written as a pool file
(`larpo data=lists model=hf objective=pairwise ...`), timed by its summary's reference + training
phases. Its ratio to TRL is printed beside the committed figure (COMMITTED): a regression of more
than 10% shows the next time anyone runs this.

    python benchmarks/train_pairwise.py --pairs 8192 --repeats 3
    python benchmarks/train_pairwise.py --listwise   # also: listmle on lists of 4, per candidate
    python benchmarks/train_pairwise.py --listwise --objectives infonca,nca,approxndcg,neuralndcg,pro,raft

TRL is optional (`pip install trl`); without it the TRL row is skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from larpo import objectives
from larpo.models.policy import build_tiny_llama, load_policy
from larpo.run.datamodule import ListDataModule, TrainingList
from larpo.run.module import LarpoModule
from larpo.sequences import encode_prompt, encode_response, sequence_logps
from larpo.worlds.arithmetic import ArithmeticTask, build_tokenizer, true_answer

BATCH, LR, BETA = 64, 1e-4, 0.1
# the larpo command's reference + training over TRL DPOTrainer's time, measured in one run of this
# benchmark on 2 cores and committed with docs/performance.md (2026-12-07)
COMMITTED = {"larpo command / TRL DPOTrainer": 0.73}


def make_lists(n: int, m: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """n prompts, each with m distinct answers best first: the true one, then near misses."""
    rng = random.Random(seed)
    prompts = ArithmeticTask().prompts(n, seed=seed)
    lists = []
    for p in prompts:
        t = true_answer(p)
        misses = sorted(rng.sample(range(1, 11), m - 1))
        lists.append([str(t)] + [str(t + d * rng.choice((-1, 1))) for d in misses])
    return prompts, lists


def bare_pytorch(path: str, prompts, lists) -> float:
    """The floor: tokenise, reference log-probs once, then forward, DPO loss, backward, step."""
    model, tok = load_policy(path)
    start = time.perf_counter()
    seqs = [
        [tok(p)["input_ids"] + tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in rs]
        for p, rs in zip(prompts, lists)
    ]
    prompt_len = [len(tok(p)["input_ids"]) for p in prompts]

    def logps(rows: list[list[int]], plen: list[int]) -> torch.Tensor:
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        resp = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, (r, pl_) in enumerate(zip(rows, plen)):
            ids[i, : len(r)], mask[i, : len(r)], resp[i, pl_ : len(r)] = torch.tensor(r), 1, True
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        tgt = ids[:, 1:]
        lp = logits.gather(2, tgt.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
        return (lp * resp[:, 1:]).sum(-1)

    flat = [s for row in seqs for s in row]
    flat_plen = [pl_ for pl_, row in zip(prompt_len, seqs) for _ in row]
    with torch.no_grad():
        ref = torch.cat([logps(flat[i : i + 1024], flat_plen[i : i + 1024]) for i in range(0, len(flat), 1024)])
    ref = ref.view(len(seqs), -1)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(0)).tolist()
    model.train()
    for b in range(0, len(order), BATCH):
        idx = order[b : b + BATCH]
        lp = logps([s for i in idx for s in seqs[i]], [prompt_len[i] for i in idx for _ in seqs[i]])
        g = BETA * (lp.view(len(idx), -1) - ref[idx])
        loss = -F.logsigmoid(g[:, 0] - g[:, -1]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


FIT_SECONDS: dict[str, list[float]] = {}  # training steps only (the Lightning fit), per objective


def larpo_phase(path: str, prompts, lists, objective: str = "pairwise") -> float:
    """What the loop does after ranking: tokenise once, reference log-probs once, Lightning fit."""
    model, tok = load_policy(path)
    start = time.perf_counter()
    items = [
        TrainingList(encode_prompt(tok, p), [encode_response(tok, r) for r in rs], [float(-j) for j in range(len(rs))])
        for p, rs in zip(prompts, lists)
    ]
    flat = sequence_logps(model, [(it.prompt_ids, r) for it in items for r in it.response_ids], tok.pad_token_id)
    for i, it in enumerate(items):
        k = len(it.response_ids)
        it.ref_logps = flat[i * k : (i + 1) * k]
    data = ListDataModule(BATCH, tok.pad_token_id, seed=0)
    data.set_lists(items)
    objective_fn = objectives.build(objective, sft_weight=0.0)  # beta: the config default, 0.1
    module = LarpoModule(model, objective_fn, lr=LR, beta=BETA)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )
    fit_start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    FIT_SECONDS.setdefault(objective, []).append(time.perf_counter() - fit_start)
    return time.perf_counter() - start


WAIT_POLICY = {"policy": "larpo"}  # --wait-policy: larpo's own choice, or ACTIVE / PASSIVE forced


def larpo_command(path: str, prompts, lists, work: Path) -> float:
    """The `larpo` command on the pairs as a pool file: its summary's reference + training phases."""
    pool = work / "pairs.jsonl"
    if not pool.exists():
        rows = ({"prompt": p, "responses": rs, "rewards": [1.0, 0.0]} for p, rs in zip(prompts, lists))
        pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dir = work / f"run-{time.time_ns()}"
    cmd = [
        str(Path(sys.executable).parent / "larpo"),
        "data=lists",
        f"data.path={pool}",
        "data.evaluate=false",
        "model=hf",
        f"model.path={path}",
        "objective=pairwise",
        "sft_weight=0",
        "iterations=1",
        "epochs_per_iteration=1",
        f"batch_size={BATCH}",
        f"lr={LR}",
        f"beta={BETA}",
        "logger=csv",
        "progress=false",
        "save_policy=false",
        f"hydra.run.dir={run_dir}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # larpo chooses, as for a user
    if WAIT_POLICY["policy"] != "larpo":
        env["OMP_WAIT_POLICY"] = WAIT_POLICY["policy"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    timing = json.loads((run_dir / "summary.json").read_text())["timing"]
    return timing.get("reference", 0.0) + timing["training"]


def trl_dpo(path: str, prompts, lists) -> float | None:
    """TRL's DPOTrainer with precomputed reference log-probs; its dataset tokenisation is timed."""
    try:
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer
    except ImportError:
        return None
    model, tok = load_policy(path)
    tok.padding_side = "right"
    ds = Dataset.from_dict({"prompt": prompts, "chosen": [r[0] for r in lists], "rejected": [r[-1] for r in lists]})
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            num_train_epochs=1,
            learning_rate=LR,
            beta=BETA,
            report_to=[],
            save_strategy="no",
            logging_steps=10,
            use_cpu=True,
            precompute_ref_log_probs=True,
            precompute_ref_batch_size=1024,
            disable_tqdm=True,
            max_length=64,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            dataloader_num_workers=0,
            seed=0,
        )
        start = time.perf_counter()
        trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
        trainer.train()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--listwise", action="store_true", help="also time listwise objectives on lists of 4")
    parser.add_argument(
        "--objectives",
        default="listmle,lambdarank",
        help="objectives --listwise times, comma-separated, e.g. infonca,nca,approxndcg,neuralndcg,pro,raft",
    )
    parser.add_argument(
        "--wait-policy",
        choices=["larpo", "ACTIVE", "PASSIVE"],
        default="larpo",
        help="the larpo command's OpenMP wait policy: its own choice (default), or forced",
    )
    args = parser.parse_args()
    WAIT_POLICY["policy"] = args.wait_policy
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as d:
        tok = build_tokenizer()
        build_tiny_llama(tok, 128, 4, 4, 384, 32, seed=0).save_pretrained(d)
        tok.save_pretrained(d)
        prompts, pairs = make_lists(args.pairs, 2)
        runs = {
            "bare PyTorch": lambda: bare_pytorch(d, prompts, pairs),
            "larpo pairwise": lambda: larpo_phase(d, prompts, pairs),
            "larpo command": lambda: larpo_command(d, prompts, pairs, Path(d)),
            "TRL DPOTrainer": lambda: trl_dpo(d, prompts, pairs),
        }
        if args.listwise:
            lp, lists4 = make_lists(args.pairs // 2, 4)  # the same number of candidates as the pairs
            for name in args.objectives.split(","):
                runs[f"larpo {name} (lists of 4)"] = lambda name=name: larpo_phase(d, lp, lists4, name)
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                t = fn()
                if t is not None:
                    times[name].append(t)
    base = statistics.median(times["bare PyTorch"])
    print(f"{args.pairs} pairs, batch {BATCH}, 1 epoch, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'contender':32s} {'seconds':>8s} {'vs bare':>8s}")
    for name, ts in times.items():
        if ts:
            print(f"{name:32s} {statistics.median(ts):8.2f} {statistics.median(ts) / base:8.2f}x")
        else:
            print(f"{name:32s} {'skipped (not installed)':>18s}")
    if times["TRL DPOTrainer"]:
        ratio = statistics.median(times["larpo command"]) / statistics.median(times["TRL DPOTrainer"])
        committed = COMMITTED["larpo command / TRL DPOTrainer"]
        against = f"; committed {committed:.2f}x, now {ratio / committed:.2f}x of it" if committed else ""
        flag = "  REGRESSION (> 10% over the committed figure)" if committed and ratio > 1.1 * committed else ""
        print(f"larpo command / TRL DPOTrainer: {ratio:.2f}x{against}{flag}")
    if args.listwise:  # same candidate count in every row, so seconds compare per candidate
        pair = statistics.median(FIT_SECONDS["pairwise"])
        print("training steps only (Lightning fit), per candidate, against pairwise:")
        for objective, ts in FIT_SECONDS.items():
            print(f"  {objective:12s} {statistics.median(ts):8.2f} s {statistics.median(ts) / pair:8.2f}x")


if __name__ == "__main__":
    main()
