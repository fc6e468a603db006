#!/bin/bash
# Session 24: synchronous vs asynchronous collection on the 2-core machine (one job at a time).
#   bash benchmarks/async_s24/run.sh            # all of it (about 20 min)
# 1. Meta-World ML1 reach (mujoco envs, 40 updates per 400 env steps: acting is a large share of a round),
#    20,000 env steps: one process on 2 torch threads vs a learner on 1 thread + 1 collector process.
# 2. T-Maze 50 (`tmaze-quick`, stops at eval return 0.99), seeds 0 and 1, the same two set-ups.
# Then benchmarks/async_s24/summary.py prints wall time, updates, env steps and the last evaluation per run.
cd "$(dirname "$0")/../.." || exit 1
source benchmarks/async_s24/common.sh
train reach-sync "${REACH[@]}" --threads 2
train reach-async "${REACH[@]}" --threads 1 --collectors 1
for S in 0 1; do
  train tmaze-sync-s$S --preset tmaze-quick --seed $S --threads 2
  train tmaze-async-s$S --preset tmaze-quick --seed $S --threads 1 --collectors 1
done
.venv/bin/python benchmarks/async_s24/summary.py "$OUT"
