#!/bin/bash
# Session 20, added at 18:35 UTC (see secondary.py): session 19's unfinished secondary measure on the held-out
# velocities. For seed S (3 or 4) a run directory runs/hcv-s20/tf-w8-sS-pairs holds session 19's config, a
# link to its checkpoints, links to the lent machine's plain/ablation pairs at 125k and 130k, and here, on this
# machine, the plain and ablation evaluations at 135k-140.4k (1,024 trials, eval seed 5, --first-steps 25):
# both halves of every pair come from one machine. Usage: secondary.sh S
cd "$(dirname "$0")/../.." || exit 1  # the repository root
S=$1; SRC=runs/hcv-s19/tf-w8-s$S; DST=runs/hcv-s20/tf-w8-s$S-pairs
mkdir -p $DST && cp $SRC/config.json $DST/ && ln -sfn $PWD/$SRC/checkpoints $DST/checkpoints
for u in 125000 130000; do for suffix in "" -forget; do
  ln -sfn $PWD/$SRC/eval-test-1024-ckpt$u$suffix.json $DST/eval-test-1024-ckpt$u$suffix.json; done; done
for forget in 0 1; do
  FORGET=$forget TRIALS=1024 FIRST_STEPS=25 UPDATES="135000 139000 140000 140400" SPLIT=test \
    bash benchmarks/hcv_s15/late_ckpts.sh $DST s20-pairs-s$S-$forget
done
