#!/bin/bash
# Session 24, after run2.sh: the learner on both threads beside its collector (run2's faster async set-up)
# on the other workloads, and a repeat of reach's sync vs async-2-threads pair in the other order.
#   bash benchmarks/async_s24/run3.sh
cd "$(dirname "$0")/../.." || exit 1
OUT=runs/s24/async
mkdir -p "$OUT"
train() {  # NAME ARGS...
  local name=$1; shift
  rm -rf "${OUT:?}/$name"
  /usr/bin/time -f "%e" -o "$OUT/$name.time" .venv/bin/icrl train "$@" --run-dir "$OUT/$name" --no-progress \
    > "$OUT/$name.log" 2>&1
}
REACH=(--preset metaworld-reach --seed 0 --total-env-steps 20000 --eval-every 1000)
train reach-async-t2-again "${REACH[@]}" --threads 2 --collectors 1
train reach-sync-again "${REACH[@]}" --threads 2
train reach-light-async-t2 "${REACH[@]}" --updates-per-collect 10 --threads 2 --collectors 1
for S in 0 1; do
  train tmaze-async-t2-s$S --preset tmaze-quick --seed $S --threads 2 --collectors 1
done
.venv/bin/python benchmarks/async_s24/summary.py "$OUT"
