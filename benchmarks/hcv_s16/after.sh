#!/bin/bash
# Session 16's protocol, fixed at 06:45 UTC on 2026-11-27, before any seed-2 checkpoint was scored
# (reordered at 07:58 and 07:59 UTC, before any was scored, so that less waits for the Transformer's last update;
# what is measured is unchanged):
# 1. Seed 2's Transformer and control, retrained with the recipe plus --checkpoint-keep-every 5000, get
#    session 15's selection unchanged: icrl select --trials 128 (training velocities, validation seed 2024),
#    then the chosen checkpoints at 1,024 trials (eval seed 5, --first-steps 25) on test and train
#    velocities, Transformer minus control, and the Transformer's memory ablation.
# 2. Every seed is also judged over its late checkpoints (benchmarks/hcv_s16/judge.py states the rule):
#    256 trials (eval seed 5) at each late kept checkpoint of both runs, on held-out velocities (the
#    verdict) and on training ones (secondary, declared at 06:40 UTC).
cd "$(dirname "$0")/../.."  # the repository root
S=runs/hcv-s16
export TAG=s16
L=benchmarks/hcv_s15/late_ckpts.sh
sel() { OMP_NUM_THREADS=1 .venv/bin/icrl select $1 --trials 128 --no-progress; }
pair() {  # pair A B LABEL SPLIT: icrl compare, appended to hcv-s16-paired.jsonl, one summary line
  .venv/bin/icrl compare $1 $2 > /tmp/s16-pair.json
  python3 -c "
import json; pc=json.load(open('/tmp/s16-pair.json')); pc['run']='$3'; pc['split']='$4'
open('benchmarks/results/continuous/hcv-s16-paired.jsonl','a').write(json.dumps(pc)+'\n')
f=lambda k: f'{pc[k]:+.2f}±{pc[k+\"_se\"]:.2f}'
print('$3', '$4', 'return', f('return'), 'ep', [f(f'return_episode_{i}') for i in range(3)], 'gain', f('episode_gain'), 'start gain', f('start_episode_gain'), flush=True)"
}
while pgrep -f "run-dir $S/mlp-w8-s2" > /dev/null; do sleep 20; done
echo "mlp trained $(date)"
sel $S/mlp-w8-s2 > $S/select-mlp.out 2> $S/select-mlp.err; echo "mlp selected $(date)"; cat $S/select-mlp.out
benchmarks/hcv_s15/eval_best.sh $S/mlp-w8-s2 mlp-w8-s2 test
benchmarks/hcv_s15/eval_best.sh $S/mlp-w8-s2 mlp-w8-s2 train
$L $S/mlp-w8-s2 mlp-w8-s2
SPLIT=train $L $S/mlp-w8-s2 mlp-w8-s2-train
SPLIT=train $L runs/hcv-s15/tf-w8-s0 tf-w8-s0-train
SPLIT=train $L runs/hcv-s15/mlp-w8-s0 mlp-w8-s0-train
SPLIT=train UPDATES="139000 140000 140400" $L runs/hcv-s11/tf-w8-s1 tf-w8-s1-train
SPLIT=train UPDATES="139000 140000 140400" $L runs/hcv-s11/mlp-s1 mlp-s1-train
echo "late evals of the finished runs done $(date)"
# TF's checkpoints so far, while it trains (a later call plays only the new ones)
sel $S/tf-w8-s2 > $S/select-tf-partial.out 2> $S/select-tf-partial.err; echo "tf partly selected $(date)"
while [ ! -f $S/tf-w8-s2/checkpoints/ckpt_000135000/state.json ]; do sleep 20; done
UPDATES="125000 130000 135000" $L $S/tf-w8-s2 tf-w8-s2-a
UPDATES="125000 130000 135000" SPLIT=train $L $S/tf-w8-s2 tf-w8-s2-a-train
sel $S/tf-w8-s2 > $S/select-tf-partial2.out 2> $S/select-tf-partial2.err; echo "tf partly selected again $(date)"
while pgrep -f "run-dir $S/tf-w8-s2" > /dev/null; do sleep 20; done
echo "tf trained $(date)"
UPDATES="139000 140000 140400" $L $S/tf-w8-s2 tf-w8-s2-b &
UPDATES="139000 140000 140400" SPLIT=train $L $S/tf-w8-s2 tf-w8-s2-b-train &
sel $S/tf-w8-s2 > $S/select-tf.out 2> $S/select-tf.err; echo "tf selected $(date)"; cat $S/select-tf.out
wait
.venv/bin/python benchmarks/hcv_s16/judge.py
.venv/bin/python benchmarks/hcv_s16/judge.py --split train
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 test &
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 train &
wait
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 test --forget-episodes &
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 train --forget-episodes &
wait
for split in test train; do
  pair $S/tf-w8-s2/eval-$split-1024-start25-best.json $S/mlp-w8-s2/eval-$split-1024-start25-best.json "tf-w8-s2 best - mlp-w8-s2 best" $split
  pair $S/tf-w8-s2/eval-$split-1024-start25-best.json $S/tf-w8-s2/eval-$split-1024-start25-best-forget.json "tf-w8-s2 best - its forget ablation" $split
done
echo "all done $(date)"
