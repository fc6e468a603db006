#!/bin/bash
# Session 15's protocol, fixed before any selection result was seen:
# 1. icrl select on both seed-0 runs: every kept checkpoint (multiples of 5,000 updates + the newest 3),
#    128 greedy trials on TRAINING velocities, validation seed 2024 (the default).
# 2. The chosen checkpoints: 1,024-trial evals on test and train velocities (seed 5, --first-steps 25),
#    the same trials as every earlier paired eval; TF best minus control best with icrl compare;
#    the memory ablation of TF best on both splits.
cd "$(dirname "$0")/../.."  # the repository root
S=runs/hcv-s15
sel() { OMP_NUM_THREADS=1 .venv/bin/icrl select $1 --trials 128 --no-progress; }
while pgrep -f "run-dir $S/mlp-w8-s0" > /dev/null; do sleep 20; done
echo "mlp trained $(date)"
sel $S/mlp-w8-s0 > $S/select-mlp.out 2> $S/select-mlp.err; echo "mlp selected $(date)"; cat $S/select-mlp.out
benchmarks/hcv_s15/eval_best.sh $S/mlp-w8-s0 mlp-w8-s0 test
benchmarks/hcv_s15/eval_best.sh $S/mlp-w8-s0 mlp-w8-s0 train
# TF's checkpoints so far, while it trains (a later call plays only the new ones)
sel $S/tf-w8-s0 > $S/select-tf-partial.out 2> $S/select-tf-partial.err; echo "tf partly selected $(date)"
while pgrep -f "run-dir $S/tf-w8-s0" > /dev/null; do sleep 20; done
echo "tf trained $(date)"
sel $S/tf-w8-s0 > $S/select-tf.out 2> $S/select-tf.err; echo "tf selected $(date)"; cat $S/select-tf.out
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s0 tf-w8-s0 test &
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s0 tf-w8-s0 train &
wait
for split in test train; do
  .venv/bin/icrl compare $S/tf-w8-s0/eval-$split-1024-start25-best.json $S/mlp-w8-s0/eval-$split-1024-start25-best.json > /tmp/s15-pc-$split.json
  python3 -c "
import json; pc=json.load(open('/tmp/s15-pc-$split.json')); pc['run']='tf-w8-s0 best - mlp-w8-s0 best'; pc['split']='$split'
open('benchmarks/results/continuous/hcv-s15-paired.jsonl','a').write(json.dumps(pc)+'\n')
f=lambda k: f'{pc[k]:+.2f}±{pc[k+\"_se\"]:.2f}'
print('TF best - control best', '$split', 'return', f('return'), 'ep', [f(f'return_episode_{i}') for i in range(3)], 'gain', f('episode_gain'), 'start gain', f('start_episode_gain'), flush=True)"
done
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s0 tf-w8-s0 test --forget-episodes &
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s0 tf-w8-s0 train --forget-episodes &
wait
for split in test train; do
  .venv/bin/icrl compare $S/tf-w8-s0/eval-$split-1024-start25-best.json $S/tf-w8-s0/eval-$split-1024-start25-best-forget.json > /tmp/s15-pf-$split.json
  python3 -c "
import json; pc=json.load(open('/tmp/s15-pf-$split.json')); pc['run']='tf-w8-s0 best - its forget ablation'; pc['split']='$split'
open('benchmarks/results/continuous/hcv-s15-paired.jsonl','a').write(json.dumps(pc)+'\n')
f=lambda k: f'{pc[k]:+.2f}±{pc[k+\"_se\"]:.2f}'
print('memory share (TF best)', '$split', 'ep', [f(f'return_episode_{i}') for i in range(3)], 'start', f('start_episode_gain'), flush=True)"
done
echo "all done $(date)"
