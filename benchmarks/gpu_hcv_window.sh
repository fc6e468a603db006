#!/bin/bash
# Session 10, HalfCheetahVel: does a window that reaches back into the previous episode give the
# Transformer an episode-3 gain? Continues one CPU-trained run (BASE: context 8, 110k updates) on the GPU
# with longer windows, one process per window length sharing the GPU, then evaluates each on held-out
# (test) and training targets. Needs .whl/ as gpu_check.sh does; carry .whl and BASE.
# Usage: BASE=runs/hcv-s10/base WINDOWS="32 100 200" TRAIN_SECONDS=400 EVAL_TRIALS=32 DEVICE=cuda \
#   benchmarks/gpu_hcv_window.sh
# Writes to $OUT (default /tmp/gpu_hcv_window): one tar per window (config, metrics, latest checkpoint),
# the logs, and eval-<window>-<split>.json.
set -u
OUT=${OUT:-/tmp/gpu_hcv_window}
BASE=${BASE:-runs/hcv-s10/base}
WINDOWS=${WINDOWS:-32 100 200}
DEVICE=${DEVICE:-cuda}
source benchmarks/gpu_setup.sh

for w in $WINDOWS; do
  rm -rf /tmp/hcv-w$w && cp -r "$BASE" /tmp/hcv-w$w
  # SIGTERM at the limit: the trainer checkpoints where it is and exits (128 + 15).
  timeout -k 60 "${TRAIN_SECONDS:-400}" python3 -m icrl resume /tmp/hcv-w$w --set device=$DEVICE \
    --set model.context_len=$w --set threads=2 --total-env-steps 400000 > "$OUT/train-w$w.log" 2>&1 &
done
wait

for w in $WINDOWS; do
  for split in test train; do
    timeout 150 python3 -m icrl eval /tmp/hcv-w$w --trials ${EVAL_TRIALS:-32} --seed 1 --env.split $split \
      > "$OUT/eval-w$w-$split.json" 2> "$OUT/eval-w$w-$split.err" &
  done
done
wait

for w in $WINDOWS; do
  ckpt=$(python3 -c "import json; print(json.load(open('/tmp/hcv-w$w/checkpoints/latest.json'))['checkpoint'])")
  tar -C /tmp/hcv-w$w -cf "$OUT/run-w$w.tar" config.json metrics.jsonl checkpoints/latest.json "checkpoints/$ckpt"
  tail -n 3 "$OUT/train-w$w.log"; grep -ho '"eval/return[^,]*' "$OUT"/eval-w$w-*.json
done
# Eight files at most come back: pack the small ones.
tar -C "$OUT" -cf "$OUT/logs.tar" machine.txt $(cd "$OUT" && ls train-*.log eval-*) && \
  (cd "$OUT" && rm -f machine.txt train-*.log eval-*)
exit 0
