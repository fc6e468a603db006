#!/bin/bash
# Session 23: T-Maze 50 (preset tmaze-quick, stops once solved) on this 2-core machine, one process on two
# threads against two data-parallel processes (torchrun) on one thread each, seeds 0 and 1, one after another.
#   bash benchmarks/ddp_s23/tmaze.sh
cd "$(dirname "$0")/../.." || exit 1  # the repository root
mkdir -p runs/s23
for seed in 0 1; do
  /usr/bin/time -f "wall %e s" .venv/bin/icrl train --preset tmaze-quick --seed $seed --threads 2 \
    --run-dir runs/s23/tmaze-1proc-s$seed --no-progress > runs/s23/tmaze-1proc-s$seed.log 2>&1
  OMP_NUM_THREADS=1 /usr/bin/time -f "wall %e s" .venv/bin/torchrun --nproc-per-node 2 -m icrl train \
    --preset tmaze-quick --seed $seed --threads 1 --run-dir runs/s23/tmaze-ddp2-s$seed --no-progress \
    > runs/s23/tmaze-ddp2-s$seed.log 2>&1
done
echo done
