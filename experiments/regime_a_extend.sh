#!/usr/bin/env bash
# regime_a_bracketed / regime_a_bracketed_raft, the bracketing rule's second step. Written
# 2026-11-27 from the stage-1 choices (README, "Regime (a), bracketed"), before any of its results.
# The rule (header of src/larpo/conf/experiment/regime_a_bracketed.yaml): a choice at an end of its
# grid extends that grid one value past the end (beta x3, 2 more iterations); the choice is then
# made again over the whole grid. Stage-1 choices at an end after beta 0.9 and RAFT's 5 iterations:
# beta (pairwise, contrastive, ListMLE), iteration (contrastive, ListMLE at 3; RAFT at 5). So:
#   1. beta 2.7 at lr 1e-5, 3e-5, 1e-4, with 5 iterations for contrastive and ListMLE (their
#      iteration grid's extension) and 3 for pairwise (it chose iteration 1). lr 3e-6 is left out:
#      its best score at beta 0.9 (0.524-0.529) is 0.015-0.024 below each choice, and beta 0.3 -> 0.9
#      raised it by at most 0.008 (lr 1e-6 was left out of beta 0.9 on the same grounds).
#   2. 5 iterations at beta 0.9 for contrastive and ListMLE at lr 1e-5 and 3e-5, their two best
#      (the iteration extension of the current choice; iterations 1-3 repeat the 3-iteration runs).
#   3. 7 iterations for RAFT at lr 3e-5 and 1e-4, its two best.
# Every sweep goes into the experiment's multirun folder, so `larpo-report` merges it with stage 1;
# run the same command again to continue (finished jobs are skipped, interrupted ones resumed).
#   experiments/regime_a_extend.sh 2                       # here: 2 jobs at a time
#   LARPO_SWEEP_PREFIX=gpu LARPO_OVERRIDES="trainer=gpu trainer.precision=32-true" \
#       experiments/regime_a_extend.sh 15                  # a GPU machine with 16 cores
# (a job's thread count, logger and progress bar are not part of its setting: a sweep continued
# with other values skips or resumes the same jobs.)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2}
prefix=${LARPO_SWEEP_PREFIX:-cpu}
sweep() {
    local dir=$1
    shift
    local start
    start=$(date +%s)
    python -m larpo -m logger=csv progress=false hydra/launcher=local hydra.launcher.n_jobs="$jobs" \
        hydra.sweep.dir="$dir" "$@" ${LARPO_OVERRIDES:-} || echo "some jobs in $dir failed: the report lists them"
    echo "$dir: $(($(date +%s) - start)) s wall, $jobs jobs at a time on $(nproc) cores" | tee -a "$dir/wall_time.txt"
}
a=multirun/regime_a_bracketed
sweep "$a/${prefix}_beta2.7_it5" experiment=regime_a_bracketed objective=contrastive,listmle lr=1e-5,3e-5,1e-4 \
    beta=2.7 iterations=5 seed=0,1,2,3,4
sweep "$a/${prefix}_beta2.7" experiment=regime_a_bracketed objective=pairwise lr=1e-5,3e-5,1e-4 beta=2.7 \
    seed=0,1,2,3,4
sweep "$a/${prefix}_beta0.9_it5" experiment=regime_a_bracketed objective=contrastive,listmle lr=1e-5,3e-5 \
    beta=0.9 iterations=5 seed=0,1,2,3,4
sweep multirun/regime_a_bracketed_raft/"${prefix}_iterations7" experiment=regime_a_bracketed_raft lr=3e-5,1e-4 \
    iterations=7 seed=0,1,2,3,4
