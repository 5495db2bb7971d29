"""Two larpo processes on one machine: a smoke run alone, then two started side by side, with
larpo's own choice of OpenMP wait policy (`OMP_WAIT_POLICY` unset: it spins alone and sleeps with
`threads` below the core count or parallel sweep jobs), with threads that sleep when idle
(`PASSIVE`) and, as the baseline in the same run, threads that spin (`ACTIVE`).

    python benchmarks/side_by_side.py [--repeat 2] [--threads N]   # a sweep's two jobs: --threads 1

Prints each process's wall time and the ratio of side by side to alone (goal: <= 2.5x on 2 cores;
1.0x would mean the two runs got the machine each, 2.0x that they shared it without loss).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LARPO = str(Path(sys.executable).parent / "larpo")


def start(run_dir: Path, wait_policy: str, threads: str | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"WANDB_MODE": "offline"}
    if wait_policy != "larpo":
        env["OMP_WAIT_POLICY"] = wait_policy
    cmd = [LARPO, "size=smoke", "logger=csv", "progress=false", f"hydra.run.dir={run_dir}"]
    if threads:
        cmd.append(f"threads={threads}")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def walls(procs: list[subprocess.Popen]) -> list[float]:
    began = time.perf_counter()
    out = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a smoke run failed:\n{err.decode()[-2000:]}")
        out.append(time.perf_counter() - began)
    return out


def loop_seconds(run_dir: Path) -> float:
    """The run's own work (sampling, scoring, training, evaluation): its wall time less the process
    start and the cached SFT policy's load, which are mostly imports on one core."""
    timing = json.loads((run_dir / "summary.json").read_text())["timing"]
    return timing["total"] - timing.get("startup", 0.0) - timing.get("sft", 0.0)


def measure(tmp: Path, wait_policy: str, together: int, threads: str | None, tag: str) -> list[tuple[float, float]]:
    """(process wall time, loop seconds) of each of `together` smoke runs started at once."""
    dirs = [tmp / f"{tag}-{i}" for i in range(together)]
    procs = [start(d, wait_policy, threads) for d in dirs]
    return list(zip(walls(procs), map(loop_seconds, dirs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", default=None, help="larpo's `threads` key (default: larpo's default)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        measure(tmp, "PASSIVE", 1, args.threads, "warm")  # the SFT policy cached, files warm
        for policy in ("larpo", "PASSIVE", "ACTIVE"):
            alone, side = [], []
            for r in range(args.repeat):
                alone += measure(tmp, policy, 1, args.threads, f"{policy}-alone-{r}")
                side += measure(tmp, policy, 2, args.threads, f"{policy}-side-{r}")
            rows.append((policy, *(statistics.median(x[i] for x in alone) for i in (0, 1))))
            rows[-1] += tuple(statistics.median(x[i] for x in side) for i in (0, 1))
    print(f"{os.cpu_count()} cores, threads={args.threads or 'default'}, median of {args.repeat}")
    print("| OpenMP threads | process alone | each of two side by side | ratio ", end="")
    print("| loop alone | loop side by side | ratio |")
    print("|---|---|---|---|---|---|---|")
    for policy, alone, loop_alone, side, loop_side in rows:
        name = {"larpo": "larpo's choice", "PASSIVE": "sleep when idle", "ACTIVE": "spin (baseline)"}[policy]
        print(
            f"| {name} | {alone:.1f} s | {side:.1f} s | {side / alone:.2f}x "
            f"| {loop_alone:.1f} s | {loop_side:.1f} s | {loop_side / loop_alone:.2f}x |"
        )


if __name__ == "__main__":
    main()
