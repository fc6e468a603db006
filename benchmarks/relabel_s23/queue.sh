#!/bin/bash
# Session 23: GoalGrid 8x8 (6 landmarks, instructions of 4, 60-step episodes) with and without hindsight
# relabelling, seeds 1-3; each seed's two arms side by side (one core each), then a 256-trial evaluation of
# each final checkpoint (eval seed 1000, the same tasks for both arms), then the pre-registered judge.
#   bash benchmarks/relabel_s23/queue.sh
cd "$(dirname "$0")/../.." || exit 1  # the repository root
mkdir -p runs/s23
for S in 1 2 3; do
  for R in 0 0.5; do
    # shellcheck disable=SC2046  # the args file is a list of arguments
    .venv/bin/icrl train $(cat benchmarks/relabel_s23/args) --seed $S --replay.relabel $R \
      --run-dir runs/s23/gg-r$R-s$S > runs/s23/gg-r$R-s$S.log 2>&1 &
  done
  wait
  for R in 0 0.5; do
    .venv/bin/icrl eval runs/s23/gg-r$R-s$S --trials 256 --seed 1000 --threads 1 > runs/s23/gg-r$R-s$S-eval.log 2>&1 &
  done
  wait
done
.venv/bin/python benchmarks/relabel_s23/judge.py
