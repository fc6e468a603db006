#!/bin/bash
# Session 20's evaluations, as fixed in benchmarks/hcv_s20/judge.py: 256 trials, eval seed 5, the six late
# kept checkpoints, both velocity sets, via benchmarks/hcv_s15/late_ckpts.sh.
#   after.sh tf      the Transformers of seeds 3 and 4 (trained in session 19), one evaluation at a time
#   after.sh mlp S   the control of seed S, once its run (runs/hcv-s20/mlp-w8-sS, log runs/hcv-s20/mlp-sS.log)
#                    has ended
cd "$(dirname "$0")/../.." || exit 1  # the repository root
LATE=benchmarks/hcv_s15/late_ckpts.sh
case $1 in
  tf) for S in 3 4; do for SPLIT in test train; do
        SPLIT=$SPLIT bash $LATE runs/hcv-s19/tf-w8-s$S s20-tf-s$S-$SPLIT; done; done ;;
  mlp) S=$2
       until grep -q "icrl: results in" runs/hcv-s20/mlp-s$S.log; do
         if grep -q Traceback runs/hcv-s20/mlp-s$S.log; then echo "control $S failed"; exit 1; fi
         sleep 30; done
       for SPLIT in test train; do SPLIT=$SPLIT bash $LATE runs/hcv-s20/mlp-w8-s$S s20-mlp-s$S-$SPLIT; done ;;
  *) echo "usage: after.sh tf | after.sh mlp SEED" >&2; exit 2 ;;
esac
