#!/usr/bin/env bash
# Reproduce the paper's tables and figures at the embedded scale, then write their reports to
# docs/results/<experiment>/ (results.md, results.png, runs.csv, report.json, wall_time.txt).
#   experiments/paper.sh                      # all six, 2 jobs at a time (hydra/launcher=local)
#   experiments/paper.sh table3_objectives    # just one
# Extra Hydra overrides go in LARPO_OVERRIDES, e.g. LARPO_OVERRIDES="hydra/launcher=slurm trainer=gpu".
# Run it again after an interruption and it continues: each experiment sweeps into
# multirun/<experiment>/paper (LARPO_SWEEP_NAME changes that name), finished jobs are skipped and
# interrupted ones resume from their checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
experiments=("$@")
[ ${#experiments[@]} -eq 0 ] && experiments=(objectives_extended table3_objectives table3_objectives_sft0 fig3b_temperature \
    table4_memorization fig3a_negatives fig3c_list_size table2_baselines)
launcher=${LARPO_LAUNCHER:-hydra/launcher=local}

# the SFT policies of the five seeds first (one after the other: parallel torch processes
# oversubscribe the cores), so parallel jobs never train the same one twice
for seed in 0 1 2 3 4; do larpo-sft seed=$seed progress=false hydra.run.dir=outputs/sft/seed$seed; done

suite_start=$(date +%s)
for name in "${experiments[@]}"; do
    sweep=multirun/$name/${LARPO_SWEEP_NAME:-paper}
    start=$(date +%s)
    # shellcheck disable=SC2086
    larpo -m experiment="$name" $launcher progress=false hydra.sweep.dir="$sweep" ${LARPO_OVERRIDES:-} \
        || echo "some jobs of $name failed: the report lists them"
    end=$(date +%s)
    mkdir -p "docs/results/$name"
    larpo-report "$sweep" --out "docs/results/$name/results.md" > /dev/null
    echo "$name: $((end - start)) s wall on $(nproc) cores, sweep in $sweep" | tee "docs/results/$name/wall_time.txt"
done
echo "paper suite: $(($(date +%s) - suite_start)) s wall"
