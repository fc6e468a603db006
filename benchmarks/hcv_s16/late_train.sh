#!/bin/bash
# Session 16, secondary (fixed at 06:40 UTC, before any of these was scored): the late checkpoints of every
# seed also on the TRAINING velocities (256 trials, eval seed 5), for `judge.py --split train`. Seeds 0 and 1
# once the seed-2 control has trained (a core is free), seed 2 once its Transformer has too.
cd "$(dirname "$0")/../.."  # the repository root
export SPLIT=train
L=benchmarks/hcv_s15/late_ckpts.sh
while pgrep -f "run-dir runs/hcv-s16/mlp-w8-s2" > /dev/null; do sleep 20; done
$L runs/hcv-s15/tf-w8-s0 tf-w8-s0-train
$L runs/hcv-s15/mlp-w8-s0 mlp-w8-s0-train
UPDATES="139000 140000 140400" $L runs/hcv-s11/tf-w8-s1 tf-w8-s1-train
UPDATES="139000 140000 140400" $L runs/hcv-s11/mlp-s1 mlp-s1-train
$L runs/hcv-s16/mlp-w8-s2 mlp-w8-s2-train
while pgrep -f "run-dir runs/hcv-s16/tf-w8-s2" > /dev/null; do sleep 20; done
$L runs/hcv-s16/tf-w8-s2 tf-w8-s2-train
echo "late train done $(date)"
