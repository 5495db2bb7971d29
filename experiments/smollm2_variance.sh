#!/usr/bin/env bash
# The variance study (src/larpo/conf/experiment/smollm2_variance.yaml, pre-registered) and GRPO's
# lr (smollm2_grpo_tune.yaml), in the order the study's header gives, each cell into its
# experiment's multirun folder. Run it again to continue: finished jobs are skipped, interrupted
# ones resumed, evaluations already in eval.jsonl not repeated.
#   experiments/smollm2_variance.sh 2          # 2 jobs at a time, one thread each
#   python experiments/smollm2_variance.py     # the study's quantities, once the cells are done
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2}
v=multirun/smollm2_variance
t=multirun/smollm2_grpo_tune
sweep() {
    local dir=$1
    shift
    local start
    start=$(date +%s)
    python -m larpo -m logger=csv progress=false threads=1 hydra/launcher=local hydra.launcher.n_jobs="$jobs" \
        hydra.sweep.dir="$dir" "$@" ${LARPO_OVERRIDES:-} || echo "some jobs in $dir failed: the report lists them"
    echo "$dir: $(($(date +%s) - start)) s wall, $jobs jobs at a time on $(nproc) cores, $(date -u +%FT%TZ)" \
        | tee -a "$(dirname "$dir")/wall_time.txt"
}
# GRPO's next lr by the bracketing rule: one value past the end the choice sits at, or nothing
bracket() {
    larpo-report "$t" >/dev/null
    python - "$t" <<'PY'
import glob, json, sys
choice = json.load(open(f"{sys.argv[1]}/choices.json"))["settings"][0]
if choice["at_an_end"]:
    tried = set()
    for path in glob.glob(f"{sys.argv[1]}/*/*/.hydra/overrides.yaml"):
        tried |= {float(x.split("=", 1)[1]) for x in open(path).read().split() if x.startswith("lr=")}
    lr = float(choice["chosen"]["lr"])
    print(f"{lr * 3 if lr >= max(tried) else lr / 3:.1e}")
PY
}
sweep "$v/base" experiment=smollm2_variance
sweep "$t/grid" experiment=smollm2_grpo_tune
for step in 1 2; do
    lr=$(bracket)
    [ -z "$lr" ] && break
    sweep "$t/bracket$step" experiment=smollm2_grpo_tune lr="$lr"
done
# the evaluation's sampling alone: every base policy again with eval.seed=1
touch "$v/eval.jsonl"
for run in "$v"/base/*/; do
    grep -qF "\"run\": \"${run%/}\"" "$v/eval.jsonl" || echo "${run%/}"
done | xargs -r -P "$jobs" -I{} env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE \
    python experiments/evaluate_policy.py {} eval.seed=1 threads=1 progress=false --out "$v/eval.jsonl"
sweep "$v/k8" experiment=smollm2_variance method=smollm2_listmle candidate_list.size=8
sweep "$v/hardest" experiment=smollm2_variance negatives=hardest
sweep "$v/p64" experiment=smollm2_variance data.prompts_per_iteration=64
