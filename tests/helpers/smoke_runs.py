"""Smoke runs whose numbers a refactoring must keep to the last digit.

Each run goes through the real CLI at `size=smoke`; its digest is what it computed: the history and
final metrics, the reference forwards, a hash of each pool file (samples, rewards, kept indices,
reference log-probs) and a hash of the saved policy's weights (the training, bit for bit).
Thread counts are explicit so that the digest does not depend on the machine's cores.

`python tests/helpers/smoke_runs.py` writes the fixtures anew; only do that when a change of the
numbers is meant (a new sampling order, say), and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "smoke_runs"

RUNS = {
    "default": [],
    "digits": ["data=digits"],
    "contrastive_hardest": ["objective=contrastive", "negatives=hardest"],
    "memory_all_lambdarank": ["candidate_list=memory_all", "objective=lambdarank"],
}
THREADS = {"threads2": "threads=2", "threads1": "threads=1"}


def cases() -> list[tuple[str, list[str]]]:
    """Every run at 2 threads (the default on a 2-core machine) and the default run at 1 thread."""
    out = [(f"{name}-threads2", [*overrides, THREADS["threads2"]]) for name, overrides in RUNS.items()]
    return [*out, ("default-threads1", [THREADS["threads1"]])]


def machine() -> dict:
    """What the last digit depends on besides the code: the CPU, torch and Python."""
    import torch

    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = hashlib.sha256(line.encode()).hexdigest()[:12]
                break
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu_flags": flags}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    pool = {p.name: _sha(p) for p in sorted((run_dir / "pool").glob("iteration_*.jsonl"))}
    weights = {p.name: _sha(p) for p in sorted((run_dir / "policy").glob("*.safetensors"))}
    return {
        "history": summary["history"],
        "final": summary["final"],
        "reference_forwards": summary["reference_forwards"],
        "pool": pool,
        "policy": weights,
    }


def run(run_dir: Path, cache_dir: Path, overrides: list[str], env: dict | None = None) -> dict:
    """One smoke run through the CLI; its digest."""
    args = ["size=smoke", "logger=csv", f"model.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}", *overrides]
    out = subprocess.run([sys.executable, "-m", "larpo", *args], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"larpo {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return digest(run_dir)


def main() -> None:
    import tempfile

    from helpers.env import ENV

    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in cases():
            got = run(Path(tmp) / name, Path(tmp) / "cache", overrides, env=ENV)
            got["overrides"], got["machine"] = overrides, machine()
            (FIXTURES / f"{name}.json").write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
            print(name, got["final"].get("win_rate_vs_sft"), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    main()
