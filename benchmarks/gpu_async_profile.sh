#!/bin/bash
# For a session lent a GPU machine: where the GPU learner's time goes with and without collectors
# (RESULTS "GPU: asynchronous collection": the learner made 36-37 updates/s beside its collectors against
# 40/s in `icrl bench`). Profiles the learner process (cProfile; the collectors are not profiled) on the cut
# HalfCheetahVel recipe of gpu_async.sh, then reruns the collectors' GPU test.
#   run: bash benchmarks/gpu_async_profile.sh     (carry .whl; about 3 min of command time)
# Local dry run: DEVICE=cpu SKIP_WHEELS=1 HCV_STEPS=6000 bash benchmarks/gpu_async_profile.sh
set -u
OUT=${OUT:-/tmp/gpu_async_profile}
DEVICE=${DEVICE:-cuda}
STEPS=${HCV_STEPS:-10000}
source benchmarks/gpu_setup.sh
# shellcheck disable=SC2046  # the recipe file is a list of arguments
HCV=($(cat benchmarks/hcv_recipe.args) --total-env-steps "$STEPS" --updates-per-collect 100 --eval-every 1000000
  --seed 0 --threads 4 --device "$DEVICE" --no-progress)
for name in sync async2; do
  extra=(); [ $name = async2 ] && extra=(--collectors 2)
  rm -rf "/tmp/gpu_prof_runs/$name"
  timeout 100 python3 -m cProfile -o "/tmp/$name.prof" -m icrl train "${HCV[@]}" "${extra[@]}" \
    --run-dir "/tmp/gpu_prof_runs/$name" > "/tmp/$name.log" 2>&1
  echo "$name rc=$? $(tail -n 1 "/tmp/gpu_prof_runs/$name/metrics.jsonl" | cut -c1-100)" | tee -a "$OUT/summary.txt"
  python3 -c "import pstats,sys; s=pstats.Stats('/tmp/$name.prof', stream=sys.stdout); s.sort_stats('tottime').print_stats(35); s.sort_stats('cumulative').print_stats(45)" \
    > "$OUT/$name-profile.txt" 2>&1
  cp "/tmp/gpu_prof_runs/$name/metrics.jsonl" "$OUT/$name-metrics.jsonl" 2>/dev/null
done
[ "$DEVICE" = cpu ] || timeout 60 python3 -m pytest -p no:cacheprovider -q \
  tests/gpu/test_cuda_run.py::test_a_gpu_learner_with_cpu_collectors 2>&1 | tail -2 | tee -a "$OUT/summary.txt"
exit 0
