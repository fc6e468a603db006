#!/bin/bash
# For a session lent a GPU machine: synchronous vs asynchronous collection with the learner on the GPU (the
# case `--collectors` is for; on 2 CPU cores it is not faster, RESULTS "Asynchronous collection").
#   run: bash benchmarks/gpu_async.sh      (carry .whl, see gpu_check.sh; about 8 min of command time)
# Local dry run of the flow on CPU: DEVICE=cpu SKIP_WHEELS=1 RUN_SECONDS=20 bash benchmarks/gpu_async.sh
# 1. The GPU test of collectors (tests/gpu/test_cuda_run.py::test_a_gpu_learner_with_cpu_collectors).
# 2. T-Maze 50 (`tmaze-quick`, seed 0) to eval return 0.99: sync vs --collectors 1.
# 3. HalfCheetahVel's recipe (benchmarks/hcv_recipe.args) cut to 20,000 env steps and 100 updates per round
#    (3,700 updates): sync vs --collectors 2 and --collectors 4.
# Each run's wall clock goes to $OUT/<name>.time, its metrics to $OUT/<name>-metrics.jsonl.
set -u
OUT=${OUT:-/tmp/gpu_async}
DEVICE=${DEVICE:-cuda}
LIMIT=${RUN_SECONDS:-150}
source benchmarks/gpu_setup.sh
cat "$OUT/machine.txt"
[ "$DEVICE" = cpu ] || timeout 120 python3 -m pytest -p no:cacheprovider -q \
  "tests/gpu/test_cuda_run.py::test_a_gpu_learner_with_cpu_collectors" 2>&1 | tail -3 | tee "$OUT/pytest.log"
train() {  # NAME ARGS...
  local name=$1; shift
  rm -rf "/tmp/gpu_async_runs/$name"
  local start=$SECONDS
  timeout "$LIMIT" python3 -m icrl train "$@" --device "$DEVICE" --no-progress --run-dir "/tmp/gpu_async_runs/$name" \
    > "$OUT/$name.log" 2>&1
  echo "rc=$? $((SECONDS - start))" > "$OUT/$name.time"
  cp "/tmp/gpu_async_runs/$name/metrics.jsonl" "$OUT/$name-metrics.jsonl" 2>/dev/null
  echo "$name: $(cat "$OUT/$name.time")"
}
train tmaze-sync --preset tmaze-quick --seed 0 --threads 4
train tmaze-async1 --preset tmaze-quick --seed 0 --threads 4 --collectors 1
# shellcheck disable=SC2046  # the recipe file is a list of arguments
HCV=($(cat benchmarks/hcv_recipe.args) --total-env-steps 20000 --updates-per-collect 100 --eval-every 1000 --seed 0)
train hcv-sync "${HCV[@]}" --threads 4
train hcv-async2 "${HCV[@]}" --threads 4 --collectors 2
train hcv-async4 "${HCV[@]}" --threads 4 --collectors 4
exit 0
