#!/bin/bash
# Session 24, after run2.sh: the learner on both threads beside its collector (run2's faster async set-up)
# on the other workloads, and a repeat of reach's sync vs async-2-threads pair in the other order.
#   bash benchmarks/async_s24/run3.sh
cd "$(dirname "$0")/../.." || exit 1
source benchmarks/async_s24/common.sh
train reach-async-t2-again "${REACH[@]}" --threads 2 --collectors 1
train reach-sync-again "${REACH[@]}" --threads 2
train reach-light-async-t2 "${REACH[@]}" --updates-per-collect 10 --threads 2 --collectors 1
for S in 0 1; do
  train tmaze-async-t2-s$S --preset tmaze-quick --seed $S --threads 2 --collectors 1
done
.venv/bin/python benchmarks/async_s24/summary.py "$OUT"
