#!/usr/bin/env bash
# tmaze-quick (the `make train` job) with each memory model, seeds 0-2, one run at a time (session 26).
# Usage: bash benchmarks/seq_s26/run.sh [OUT_DIR]; then .venv/bin/python benchmarks/seq_s26/summary.py OUT_DIR/*/metrics.jsonl
set -euo pipefail
out=${1:-runs/seq-s26}
mkdir -p "$out"
for kind in ssm transformer gru; do
  for seed in 0 1 2; do
    .venv/bin/icrl train --preset tmaze-quick --model.kind "$kind" --seed "$seed" --no-progress \
      --run-dir "$out/tmq-$kind-s$seed" > "$out/tmq-$kind-s$seed.log" 2>&1
  done
done
