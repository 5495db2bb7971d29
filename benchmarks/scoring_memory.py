"""Peak memory of log-prob scoring: the token budget (`score_tokens`, larpo's default) against the
baseline in the same run, every sequence in one forward pass with its logits converted at once
(what `sequence_logps(batch_size=1024)` did before the budget).

    python benchmarks/scoring_memory.py [--sequences 256] [--length 48] [--vocab 49152]

A 2-layer Llama with SmolLM2's vocabulary (49,152) scores `--sequences` random sequences of
`--length` tokens; each mode runs in its own process and reports its peak RSS (ru_maxrss) above
the process's RSS before scoring, its time, and the largest log-prob difference to the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(mode: str, n: int, length: int, vocab: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import larpo.sequences
    from larpo.sequences import sequence_logps

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
    )
    model = LlamaForCausalLM(config).eval()
    g = torch.Generator().manual_seed(1)
    seqs = [
        (
            torch.randint(3, vocab, (length // 2,), generator=g).tolist(),
            torch.randint(3, vocab, (length // 2,), generator=g).tolist(),
        )
        for _ in range(n)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    if mode == "one_batch":
        larpo.sequences.LOGIT_ELEMENTS = 1 << 62  # every row's logits converted at once
        logps = sequence_logps(model, seqs, 0, tokens=1 << 40)
    else:
        logps = sequence_logps(model, seqs, 0)  # the default token budget
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "peak_mb": round((peak - before) / 1024), "seconds": round(seconds, 2), "logps": logps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=256)
    parser.add_argument("--length", type=int, default=48)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.sequences, args.length, args.vocab)))
        return
    results = {}
    for mode in ("one_batch", "token_budget"):
        cmd = [sys.executable, __file__, "--child", mode, "--sequences", str(args.sequences)]
        cmd += ["--length", str(args.length), "--vocab", str(args.vocab)]
        results[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    base, new = results["one_batch"], results["token_budget"]
    diff = max(abs(a - b) for a, b in zip(base["logps"], new["logps"], strict=True))
    print(f"{args.sequences} sequences x {args.length} tokens, vocabulary {args.vocab}:")
    for r in (base, new):
        print(f"  {r['mode']:>12}: peak RSS above start {r['peak_mb']} MB, {r['seconds']} s")
    print(
        f"  ratio (token budget / one batch): memory {new['peak_mb'] / max(1, base['peak_mb']):.2f}x,"
        f" time {new['seconds'] / base['seconds']:.2f}x; largest log-prob difference {diff:.2e}"
    )


if __name__ == "__main__":
    main()
