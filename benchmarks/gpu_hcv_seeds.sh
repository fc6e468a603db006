#!/bin/bash
# HalfCheetahVel seeds on a lent GPU machine: trains the recipe in benchmarks/hcv_recipe.args (window 8,
# BC off, 3-step targets, SAC-sized heads) from scratch, the Transformer and the memory-free control of
# each seed as parallel processes sharing the one GPU, for TRAIN_SECONDS; SIGTERM at the limit makes each
# checkpoint where it is. Each run comes back as a tar (config, metrics, buffer, latest checkpoint) that
# `icrl resume RUN --set device=cpu --set threads=1` continues on a CPU.
# Needs .whl/ as gpu_check.sh does; carry .whl.
# Usage: SEEDS="2" TRAIN_SECONDS=450 benchmarks/gpu_hcv_seeds.sh
set -u
OUT=${OUT:-/tmp/gpu_hcv_seeds}
SEEDS=${SEEDS:-2}
source benchmarks/gpu_setup.sh
RECIPE=$(cat benchmarks/hcv_recipe.args)
RUNS=""
for s in $SEEDS; do
  for arm in tf mlp; do
    name=hcv-$arm-s$s; RUNS="$RUNS $name"; rm -rf /tmp/$name
    extra=""; [ $arm = mlp ] && extra="--model.kind mlp"
    timeout -k 60 "${TRAIN_SECONDS:-450}" python3 -m icrl train $RECIPE $extra --seed $s --device ${DEVICE:-cuda} \
      --threads 2 --run-dir /tmp/$name > "$OUT/train-$name.log" 2>&1 &
  done
done
wait
for name in $RUNS; do
  ckpt=$(python3 -c "import json; print(json.load(open('/tmp/$name/checkpoints/latest.json'))['checkpoint'])")
  tar -C /tmp -cf "$OUT/$name.tar" $name/config.json $name/metrics.jsonl $name/buffer $name/checkpoints/latest.json \
    "$name/checkpoints/$ckpt"
  echo "$name: $(tail -n 1 /tmp/$name/metrics.jsonl | cut -c1-80)"
done
tar -C "$OUT" -cf "$OUT/logs.tar" machine.txt $(cd "$OUT" && ls train-*.log) && (cd "$OUT" && rm -f machine.txt train-*.log)
exit 0
