#!/bin/bash
# Session 17: the late evaluations of both seed-0 runs as soon as their checkpoints exist, then the judge.
# The control's 24 (after its run ends) and the Transformer's 125k-135k ones (while it still trains) run
# at a lower priority than the Transformer's training; its last three once it has finished, two at a time.
cd "$(dirname "$0")/../.."  # the repository root
TF=runs/hcv-s17/tf-w8-lrd-s0; MLP=runs/hcv-s17/mlp-w8-lrd-s0
training() { pgrep -f "run-dir $1( |$)" > /dev/null; }
echo 5 > /proc/self/autogroup
(
  while training $MLP; do sleep 20; done
  benchmarks/hcv_s17/late.sh $MLP s17-mlp
) &
for u in 125000 130000 135000; do
  until [ -f $TF/checkpoints/ckpt_000$u/state.json ]; do sleep 20; done
  UPDATES=$u benchmarks/hcv_s17/late.sh $TF s17-tf-$u
done
while training $TF; do sleep 10; done
echo 0 > /proc/self/autogroup
for weights in live ema; do
  (for split in test train; do
     UPDATES="139000 140000 140400" WEIGHTS=$weights SPLIT=$split \
       benchmarks/hcv_s15/late_ckpts.sh $TF s17-tf-last-$weights-$split
   done) &
done
wait
.venv/bin/python benchmarks/hcv_s17/judge.py
echo "after.sh done $(date)"
