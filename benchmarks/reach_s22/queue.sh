#!/bin/bash
# Session 22: the order the evaluations ran in on the 2-core machine, beside the controls' training.
# queue.sh tf: the Transformers' plain and ablated evaluations.
# queue.sh mlp: each control's evaluations, as soon as its run has written its final results.
cd "$(dirname "$0")/../.." || exit 1  # the repository root
if [ "$1" = tf ]; then
  for S in 0 1 2; do
    bash benchmarks/reach_s22/eval.sh runs/reach-s21/w16-s$S
    bash benchmarks/reach_s22/eval.sh runs/reach-s21/w16-s$S --forget-episodes
  done
else
  for S in 0 1 2; do
    until grep -q "icrl: results in" runs/reach-s22/mlp-s$S.log; do sleep 30; done
    bash benchmarks/reach_s22/eval.sh runs/reach-s22/mlp-w16-s$S
  done
fi
