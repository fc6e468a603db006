#!/bin/bash
# Session 24, after run.sh: where the time of a Meta-World reach round goes, and two more set-ups.
#   bash benchmarks/async_s24/run2.sh
# 1. `icrl bench --preset metaworld-reach` on 1 and on 2 torch threads: rollout env steps/s (8 actors) and
#    learner updates/s, measured apart.
# 2. reach as in run.sh with the learner on 2 threads beside its collector (3 busy threads on 2 cores).
# 3. reach with 10 instead of 40 updates per round (acting is then about a third of a round): sync vs async.
cd "$(dirname "$0")/../.." || exit 1
source benchmarks/async_s24/common.sh
for T in 1 2; do
  .venv/bin/icrl bench --preset metaworld-reach --threads $T > "$OUT/bench-reach-t$T.json" 2> "$OUT/bench-reach-t$T.log"
done
train reach-async-t2 "${REACH[@]}" --threads 2 --collectors 1
train reach-light-sync "${REACH[@]}" --updates-per-collect 10 --threads 2
train reach-light-async "${REACH[@]}" --updates-per-collect 10 --threads 1 --collectors 1
.venv/bin/python benchmarks/async_s24/summary.py "$OUT"
