#!/bin/bash
# Session 17: the late kept checkpoints of one run, 256 trials each (eval seed 5), trained weights and their
# moving average, held-out and training velocities: benchmarks/hcv_s17/late.sh RUN LABEL
# (UPDATES may be set, as for late_ckpts.sh, to evaluate some of them).
cd "$(dirname "$0")/../.."  # the repository root
for weights in live ema; do
  for split in test train; do
    WEIGHTS=$weights SPLIT=$split benchmarks/hcv_s15/late_ckpts.sh "$1" "$2-$weights-$split"
  done
done
