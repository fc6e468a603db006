#!/bin/bash
# Session 17: seed 0's Transformer and control with the HalfCheetahVel recipe plus a linear learning-rate
# decay to 10% of lr at the end of training (--agent.lr-decay-to 0.1), one core each, checkpoints kept
# every 5,000 updates. The only change from session 15's runs (runs/hcv-s15/*-w8-s0) is the decay; the
# moving average of the weights (--weights-ema) is saved beside each checkpoint and does not alter training.
# Another seed: benchmarks/hcv_s17/train.sh SEED (run dirs *-w8-lrd-s<SEED>).
cd "$(dirname "$0")/../.."  # the repository root
SEED=${1:-0}
for kind in transformer mlp; do
  tag=$([ $kind = mlp ] && echo mlp || echo tf)
  setsid nohup .venv/bin/icrl train $(cat benchmarks/hcv_recipe.args) --agent.lr-decay-to 0.1 --weights-ema 0.9995 \
    --seed $SEED --threads 1 --model.kind $kind --checkpoint-keep-every 5000 --run-dir runs/hcv-s17/$tag-w8-lrd-s$SEED \
    > runs/hcv-s17/$tag-s$SEED.log 2>&1 &
done
