#!/bin/bash
# Session 21's Meta-World reach pilot: score a run's final checkpoint as sessions 4 and 10 scored the preset's
# (64 trials on the 50 held-out test goals at eval seeds 1, 2, 3; 64 on the train goals at eval seed 1), one
# JSON line per evaluation. Usage: reach_eval.sh RUN >> benchmarks/results/continuous/metaworld-reach-s21-eval.jsonl
cd "$(dirname "$0")/../.." || exit 1  # the repository root
RUN=$1
score() {  # score SEED GOALS [extra eval args]: one evaluation's JSON line, tagged with the run and the goal set
  local seed=$1 goals=$2; shift 2
  .venv/bin/icrl eval "$RUN" --trials 64 --seed "$seed" "$@" 2>/dev/null | tail -n 1 \
    | sed "s|^{|{\"run\": \"$RUN\", \"goals\": \"$goals\", |"
}
for S in 1 2 3; do score $S test; done
score 1 train --env.split train
