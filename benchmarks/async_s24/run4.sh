#!/bin/bash
# Session 24, after run3.sh: collectors at a lower OS priority (`--collector-niceness 10`), so that the learner's
# two threads get the cores first and the collector runs in their idle moments. Meta-World reach as in run.sh,
# learner on 2 threads, each arm twice, alternating.
#   bash benchmarks/async_s24/run4.sh   (at commit 3c442da: the option was removed after this measurement)
cd "$(dirname "$0")/../.." || exit 1
source benchmarks/async_s24/common.sh
for R in 1 2; do
  train reach-async-t2-nice10-r$R "${REACH[@]}" --threads 2 --collectors 1 --collector-niceness 10
  train reach-sync-r$R "${REACH[@]}" --threads 2
done
.venv/bin/python benchmarks/async_s24/summary.py "$OUT"
