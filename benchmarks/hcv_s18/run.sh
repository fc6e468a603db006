#!/bin/bash
# Session 18 (benchmarks/hcv_s18/judge.py states the rule): 1,024-trial evaluations (eval seed 5,
# --first-steps 25) of every seed's Transformer at its late kept checkpoints, plain first (the primary
# measure), then the memory ablation. One queue per velocity set, run side by side on the two cores:
#   benchmarks/hcv_s18/run.sh test & benchmarks/hcv_s18/run.sh train & wait; .venv/bin/python benchmarks/hcv_s18/judge.py
cd "$(dirname "$0")/../.."  # the repository root
SPLIT=$1; L=benchmarks/hcv_s15/late_ckpts.sh
export SPLIT TRIALS=1024 FIRST_STEPS=25
for forget in 0 1; do
  FORGET=$forget $L runs/hcv-s15/tf-w8-s0 s18-s0-$SPLIT-$forget
  FORGET=$forget UPDATES="139000 140000 140400" $L runs/hcv-s11/tf-w8-s1 s18-s1-$SPLIT-$forget
  FORGET=$forget $L runs/hcv-s16/tf-w8-s2 s18-s2-$SPLIT-$forget
done
