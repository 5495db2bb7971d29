#!/usr/bin/env bash
# Run experiment sweeps on one GPU machine with many cores: N jobs at a time (Hydra's joblib
# launcher, one CPU thread each), every job on the GPU in float32 (the tiny policy gains nothing
# from bf16, and float32 keeps the arithmetic of the CPU runs). The SFT policies of the seeds are
# expected in $LARPO_CACHE (trained before, e.g. on the laptop: larpo-sft data=digits seed=N);
# a missing one is trained by the first job of its seed.
#   LARPO_CACHE=cache experiments/on_gpu.sh 14 ranking_signal_digits ranking_signal_noisy
# Each sweep goes to multirun/<experiment>/gpu (LARPO_SWEEP_NAME changes that name); run the same
# command again to continue one that stopped. Prints each sweep's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$1
shift
for name in "$@"; do
    sweep=multirun/$name/${LARPO_SWEEP_NAME:-gpu}
    start=$(date +%s)
    python -m larpo -m experiment="$name" trainer=gpu trainer.precision=32-true logger=csv progress=false \
        hydra/launcher=local hydra.launcher.n_jobs="$jobs" hydra.sweep.dir="$sweep" ${LARPO_OVERRIDES:-} \
        || echo "some jobs of $name failed: the report lists them"
    echo "$name: $(($(date +%s) - start)) s wall, $jobs jobs at a time on $(nproc) cores and $(nvidia-smi -L | head -1)" \
        | tee "$sweep/wall_time.txt"
done
