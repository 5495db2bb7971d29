"""How fast the command line answers when it runs nothing: `larpo --cfg job`, `larpo --help` and a
bad value, against the bare `python -c "import hydra, omegaconf"`, in one run.

    python benchmarks/cli.py [--repeat 5]

Prints the median wall time of each command and its ratio to the bare Hydra import (goal: <= 3x).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c 'import hydra, omegaconf' (baseline)": [sys.executable, "-c", "import hydra, omegaconf"],
    "larpo --cfg job": [str(BIN / "larpo"), "--cfg", "job"],
    "larpo --help": [str(BIN / "larpo"), "--help"],
    "larpo temperature=-1 (one-line error)": [str(BIN / "larpo"), "temperature=-1"],
}


def wall(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        for cmd in COMMANDS.values():  # warm the file cache once
            wall(cmd, cwd)
        times = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):  # interleaved, so load on the machine hits every command alike
            for name, cmd in COMMANDS.items():
                times[name].append(wall(cmd, cwd))
    base = statistics.median(next(iter(times.values())))
    print(f"| command | median wall time (of {args.repeat}) | ratio to the bare Hydra import |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| `{name}` | {statistics.median(ts):.2f} s | {statistics.median(ts) / base:.2f}x |")


if __name__ == "__main__":
    main()
