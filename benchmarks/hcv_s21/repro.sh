#!/bin/bash
# Session 21: does a fresh checkout repeat a recorded HalfCheetahVel recipe run bit for bit? Runs the recorded
# command for SECONDS seconds (one torch thread), then compares every metrics row it wrote with the committed
# rows of the recorded run (benchmarks/hcv_s21/repro.py). Usage: repro.sh ARM SEED COMMITTED_METRICS [SECONDS]
#   bash benchmarks/hcv_s21/repro.sh tf 3 hcv-s19-tf-w8-s3-metrics.jsonl 1800
#   bash benchmarks/hcv_s21/repro.sh mlp 3 hcv-s20-mlp-w8-s3-metrics.jsonl 1800
cd "$(dirname "$0")/../.." || exit 1  # the repository root
ARM=$1; S=$2; COMMITTED=$3; SECONDS_LIMIT=${4:-1800}
RUN=runs/hcv-s21/repro-$ARM-w8-s$S
KIND=(); [ "$ARM" = mlp ] && KIND=(--model.kind mlp)
rm -rf "$RUN"
# shellcheck disable=SC2046  # the recipe file is a list of arguments
timeout "$SECONDS_LIMIT" .venv/bin/icrl train $(cat benchmarks/hcv_recipe.args) --seed "$S" --threads 1 \
  --checkpoint-keep-every 5000 "${KIND[@]}" --run-dir "$RUN"
echo "train rc=$? (124: stopped by the time limit, as planned)"
.venv/bin/python benchmarks/hcv_s21/repro.py "$RUN/metrics.jsonl" "benchmarks/results/continuous/$COMMITTED"
