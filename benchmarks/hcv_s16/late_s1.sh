#!/bin/bash
# Session 16: 256-trial held-out evals (seed 5) of seed 1's three kept checkpoints (every run keeps its newest
# three), Transformer and control; niced so the two seed-2 trainings beside it keep their cores.
cd "$(dirname "$0")/../.."  # the repository root
export UPDATES="139000 140000 140400"
nice -n 10 benchmarks/hcv_s15/late_ckpts.sh runs/hcv-s11/tf-w8-s1 tf-w8-s1
nice -n 10 benchmarks/hcv_s15/late_ckpts.sh runs/hcv-s11/mlp-s1 mlp-s1
