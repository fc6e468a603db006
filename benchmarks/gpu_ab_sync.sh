#!/bin/bash
# A/B on a lent GPU: learner updates/s of the HalfCheetahVel recipe (benchmarks/hcv_recipe.args' network
# and batch; 32 actors only fill the buffer faster), before and after the session-11 change that keeps
# update statistics on the GPU, pins batches and random draws, and steps the target heads with one
# foreach kernel. OLD: a folder holding the earlier `icrl` package (e.g.
# `git archive b1b8f6d icrl | tar -x -C .old`); carry it and .whl.
# Usage: OLD=.old WINDOWS="8 32" UPDATES=300 benchmarks/gpu_ab_sync.sh
set -u
OUT=${OUT:-/tmp/gpu_ab_sync}
OLD=$(cd "${OLD:-.old}" && pwd)
source benchmarks/gpu_setup.sh  # each run below sets its own PYTHONPATH
HCV="--set env.num_actors=32 --set replay.batch_size=32 --set model.critic_hidden=[256,256] --set model.actor_hidden=[256,256] --set model.encoder_hidden=[256] --set model.d_model=128 --set agent.bc_weight=0 --set agent.n_step=3"
for w in ${WINDOWS:-8 32}; do
  for code in "$OLD" "$PWD"; do
    # `python -m` puts the working directory first on the path: run each version from its own folder.
    (cd "$code" && PYTHONPATH=/tmp/site timeout ${BENCH_TIMEOUT:-90} python3 -m icrl bench --preset half-cheetah-vel \
      --device ${DEVICE:-cuda} --threads 2 --updates ${UPDATES:-300} --rollout-steps 8 $HCV \
      --set model.context_len=$w 2>/dev/null) | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); \
print(json.dumps({'code': '$(basename $code)', 'window': $w, 'updates_per_s': d['updates_per_s'], 'gpu': d.get('gpu')}))" \
      | tee -a "$OUT/ab.jsonl"
  done
done
exit 0
