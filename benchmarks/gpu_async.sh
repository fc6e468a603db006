#!/bin/bash
# On a lent GPU machine: synchronous vs asynchronous collection with the learner on the GPU (the
# case `--collectors` is for; on 2 CPU cores it is not faster, RESULTS "Asynchronous collection").
#   run: bash benchmarks/gpu_async.sh      (carry .whl from benchmarks/gpu_wheels.sh; about 6 min of command time)
# Local dry run of the flow on CPU: DEVICE=cpu SKIP_WHEELS=1 HCV_STEPS=6000 bash benchmarks/gpu_async.sh
# 1. The GPU tests (tests/gpu, with test_a_gpu_learner_with_cpu_collectors) and the async tests on the image's
#    Python and torch.
# 2. `icrl bench` of HalfCheetahVel's recipe on the device: updates/s and round_acting_share (the most that
#    overlapping can save).
# 3. HalfCheetahVel's recipe (benchmarks/hcv_recipe.args) cut to HCV_STEPS env steps and UPC updates per
#    round, one evaluation at the end: sync vs --collectors 2 and --collectors 4, each for a fixed workload.
# Each run's wall clock goes to $OUT/<name>.time ("rc=R SECONDS"), its metrics to $OUT/<name>-metrics.jsonl.
set -u
OUT=${OUT:-/tmp/gpu_async}
DEVICE=${DEVICE:-cuda}
LIMIT=${RUN_SECONDS:-110}
STEPS=${HCV_STEPS:-12000}
UPC=${UPC:-100}
source benchmarks/gpu_setup.sh
cat "$OUT/machine.txt"
nproc --all >> "$OUT/machine.txt"  # plain nproc honours OMP_NUM_THREADS
if [ "$DEVICE" != cpu ] && [ -z "${SKIP_TESTS:-}" ]; then
  timeout 200 python3 -m pytest -p no:cacheprovider -q tests/gpu tests/train/test_async_collect.py 2>&1 \
    | tail -15 | tee "$OUT/pytest.log"
fi
# shellcheck disable=SC2046  # the recipe file is a list of arguments
RECIPE=($(cat benchmarks/hcv_recipe.args))
timeout 90 python3 -m icrl bench --preset half-cheetah-vel --device "$DEVICE" --threads 4 --updates 100 \
  --rollout-steps 50 --set model.context_len=8 --set replay.batch_size=32 --set "model.critic_hidden=[256,256]" \
  --set "model.actor_hidden=[256,256]" --set "model.encoder_hidden=[256]" --set model.d_model=128 \
  --set agent.bc_weight=0 --set agent.n_step=3 --set updates_per_collect="$UPC" 2>&1 | tail -1 | tee "$OUT/bench.jsonl"
train() {  # NAME ARGS...
  local name=$1; shift
  rm -rf "/tmp/gpu_async_runs/$name"
  local start=$SECONDS
  timeout "$LIMIT" python3 -m icrl train "$@" --device "$DEVICE" --no-progress --run-dir "/tmp/gpu_async_runs/$name" \
    > "$OUT/$name.log" 2>&1
  echo "rc=$? $((SECONDS - start))" > "$OUT/$name.time"
  cp "/tmp/gpu_async_runs/$name/metrics.jsonl" "$OUT/$name-metrics.jsonl" 2>/dev/null
  echo "$name: $(cat "$OUT/$name.time") $(tail -n 1 "$OUT/$name-metrics.jsonl" 2>/dev/null | cut -c1-120)"
}
HCV=("${RECIPE[@]}" --total-env-steps "$STEPS" --updates-per-collect "$UPC" --eval-every 1000000 --seed 0 --threads 4)
train hcv-sync "${HCV[@]}"
train hcv-async2 "${HCV[@]}" --collectors 2
train hcv-async4 "${HCV[@]}" --collectors 4
tar -C "$OUT" -cf "$OUT/logs.tar" $(cd "$OUT" && ls ./*.log ./*.time) && (cd "$OUT" && rm -f ./*.log ./*.time)
exit 0
