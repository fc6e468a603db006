#!/bin/bash
# Session 22: score a Meta-World reach pilot run's final checkpoint as session 21 did (64 trials on the 50
# held-out test goals at eval seeds 1, 2, 3; 64 on the train goals at eval seed 1) and keep every evaluation's
# per-trial file (eval.json is overwritten by each `icrl eval`), so that judge.py can pair trials.
# Usage: eval.sh RUN [--forget-episodes]   (the memory ablation; its files end in -forget.json)
# One JSON summary line per evaluation goes to benchmarks/results/continuous/metaworld-reach-s22-eval.jsonl.
# One torch thread per evaluation (added at 22:49, before any control was scored): beside three one-thread
# training runs on two cores, a two-thread evaluation took ~8 minutes, its threads waiting for each other.
# The ablation is scored on the test goals only (all that judge.py reads).
cd "$(dirname "$0")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1
RUN=$1; shift
SUFFIX=""; [ "$1" = "--forget-episodes" ] && SUFFIX="-forget"
LOG=benchmarks/results/continuous/metaworld-reach-s22-eval.jsonl
score() {  # score SEED GOALS [extra eval args]: evaluate, keep the per-trial file, log the summary line
  local seed=$1 goals=$2; shift 2
  .venv/bin/icrl eval "$RUN" --trials 64 --seed "$seed" "$@" 2>/dev/null | tail -n 1 \
    | sed "s|^{|{\"run\": \"$RUN\", \"goals\": \"$goals\", |" >> $LOG
  cp "$RUN/eval$SUFFIX.json" "$RUN/eval-$goals-64-seed$seed$SUFFIX.json"
}
for S in 1 2 3; do score $S test --env.split test "$@"; done
if [ -z "$SUFFIX" ]; then score 1 train --env.split train; fi  # exit status 0 either way
