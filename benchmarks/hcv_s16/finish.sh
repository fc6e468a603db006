#!/bin/bash
# Session 16's end phase (08:48 UTC; after.sh stopped because, run in sequence, it would not finish within
# the session): the same measurements, in parallel on both cores once the Transformer has trained, verdict
# first. Not run for lack of time: the memory ablation of the selected seed-2 Transformer.
cd "$(dirname "$0")/../.."  # the repository root
S=runs/hcv-s16
export TAG=s16
L=benchmarks/hcv_s15/late_ckpts.sh
sel() { OMP_NUM_THREADS=1 .venv/bin/icrl select $1 --trials 128 --no-progress; }
( SPLIT=train UPDATES="130000 135000 139000 140000 140400" $L runs/hcv-s15/mlp-w8-s0 mlp-w8-s0-train
  SPLIT=train UPDATES="139000 140000 140400" $L runs/hcv-s11/tf-w8-s1 tf-w8-s1-train
  SPLIT=train UPDATES="139000 140000 140400" $L runs/hcv-s11/mlp-s1 mlp-s1-train ) &
sel $S/tf-w8-s2 > $S/select-tf-partial.out 2> $S/select-tf-partial.err; echo "tf partly selected $(date)"
while pgrep -f "run-dir $S/tf-w8-s2" > /dev/null; do sleep 10; done
echo "tf trained $(date)"
( $L $S/tf-w8-s2 tf-w8-s2-test; .venv/bin/python benchmarks/hcv_s16/judge.py; echo "judged $(date)"
  SPLIT=train $L $S/tf-w8-s2 tf-w8-s2-train ) &
( sel $S/tf-w8-s2 > $S/select-tf.out 2> $S/select-tf.err; echo "tf selected $(date)"; cat $S/select-tf.out
  benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 test ) &
wait
.venv/bin/python benchmarks/hcv_s16/judge.py --split train
.venv/bin/icrl compare $S/tf-w8-s2/eval-test-1024-start25-best.json $S/mlp-w8-s2/eval-test-1024-start25-best.json | tee -a benchmarks/results/continuous/hcv-s16-paired.jsonl
benchmarks/hcv_s15/eval_best.sh $S/tf-w8-s2 tf-w8-s2 train
.venv/bin/icrl compare $S/tf-w8-s2/eval-train-1024-start25-best.json $S/mlp-w8-s2/eval-train-1024-start25-best.json | tee -a benchmarks/results/continuous/hcv-s16-paired.jsonl
echo "all done $(date)"
