#!/usr/bin/env bash
# The decisive comparison (src/larpo/conf/experiment/smollm2_decisive.yaml, pre-registered), from
# a git worktree at its commit with its own venv. Run it again to continue: finished jobs are
# skipped, interrupted ones resumed.
#   experiments/smollm2_decisive.sh 2 && larpo-report multirun/smollm2_decisive --half-width 0.04
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2}
d=multirun/smollm2_decisive/cpu
start=$(date +%s)
python -m larpo -m experiment=smollm2_decisive logger=csv progress=false threads=1 hydra/launcher=local \
    hydra.launcher.n_jobs="$jobs" hydra.sweep.dir="$d" ${LARPO_OVERRIDES:-} || echo "some jobs failed: the report lists them"
echo "$d: $(($(date +%s) - start)) s wall, $jobs jobs at a time on $(nproc) cores, $(date -u +%FT%TZ)" \
    | tee -a "$(dirname "$d")/wall_time.txt"
