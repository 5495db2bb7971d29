#!/usr/bin/env bash
# regime_a_bracketed / regime_a_bracketed_raft, the bracketing rule's third step. Written
# 2026-11-28 from the choices over the whole grid after step 2 (docs/results/regime_a_bracketed*/
# results.md at commit acf96eb), before any of its results. Choices after step 2, with the ends
# they sit at:
#   pairwise     lr 3e-5, beta 2.7, iteration 3 (of 3)   at an end: beta, iteration
#   contrastive  lr 3e-5, beta 2.7, iteration 5 (of 5)   at an end: beta, iteration
#   ListMLE      lr 3e-5, beta 0.9, iteration 5 (of 5)   at an end: iteration (beta 2.7 was worse)
#   RAFT         lr 1e-4, iteration 7 (of 7)             at an end: iteration
# Every lr is inside its grid. The rule (one value past each end: beta x3, 2 more iterations) gives:
#   pairwise     beta 2.7 and 8.1 at lr 1e-5, 3e-5 with 5 iterations            (20 jobs)
#   contrastive  beta 2.7 and 8.1 at lr 1e-5, 3e-5 with 7 iterations            (20 jobs)
#   ListMLE      beta 0.9 at lr 1e-5, 3e-5 with 7 iterations                    (10 jobs)
#   RAFT         lr 3e-5, 1e-4 with 9 iterations                                (10 jobs)
# lr 1e-4 is left out of beta 8.1: at beta 2.7 its best was 0.031 (pairwise) and 0.035 (contrastive)
# below lr 3e-5's, and a larger beta scales the loss's gradient up, which moves the best lr down.
# The two best lrs (1e-5, 3e-5) are kept everywhere, as in step 2.
# THIS IS THE LAST STEP, fixed now: the device time that runs it (15 min a session) allows no
# fourth. After it the choice is made once more over the whole grid and confirmed on seeds 5-9
# (regime_a_confirm) as it stands; a choice still at an end of its grid is confirmed anyway and
# reported as "at an end of its grid", with the last two iterations' validation scores beside it.
#   experiments/regime_a_extend3.sh 2                      # here: 2 jobs at a time, everything
#   LARPO_SWEEP_PREFIX=gpu LARPO_OVERRIDES="trainer=gpu trainer.precision=32-true" \
#       experiments/regime_a_extend3.sh 20 pairwise listmle   # one lane of a GPU machine
# Run the same command again to continue (finished jobs are skipped, interrupted ones resumed).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2}
shift || true
parts=${*:-pairwise contrastive listmle raft}
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
for part in $parts; do
    case $part in
    pairwise) sweep "$a/${prefix}_step3_pairwise" experiment=regime_a_bracketed objective=pairwise lr=1e-5,3e-5 \
        beta=2.7,8.1 iterations=5 seed=0,1,2,3,4 ;;
    contrastive) sweep "$a/${prefix}_step3_contrastive" experiment=regime_a_bracketed objective=contrastive \
        lr=1e-5,3e-5 beta=2.7,8.1 iterations=7 seed=0,1,2,3,4 ;;
    listmle) sweep "$a/${prefix}_step3_listmle" experiment=regime_a_bracketed objective=listmle lr=1e-5,3e-5 \
        beta=0.9 iterations=7 seed=0,1,2,3,4 ;;
    raft) sweep multirun/regime_a_bracketed_raft/"${prefix}_step3" experiment=regime_a_bracketed_raft \
        lr=3e-5,1e-4 iterations=9 seed=0,1,2,3,4 ;;
    *) echo "unknown part $part: pairwise, contrastive, listmle or raft" >&2; exit 2 ;;
    esac
done
