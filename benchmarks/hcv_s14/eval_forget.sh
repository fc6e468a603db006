#!/bin/bash
# Usage: benchmarks/hcv_s14/eval_forget.sh RUN LABEL -> memory-ablation evals (1024 trials, eval seed 5,
# --first-steps 25, --forget-episodes) on test and train velocities, paired with the plain evals of session 13
RUN=$1; LABEL=$2
for split in test train; do
  start=$(date +%s)
  OMP_NUM_THREADS=1 .venv/bin/icrl eval $RUN --trials 1024 --seed 5 --env.split $split --first-steps 25 --forget-episodes > /dev/null 2> $RUN/eval-$split-forget.err
  cp $RUN/eval-forget.json $RUN/eval-$split-1024-start25-forget.json
  .venv/bin/python benchmarks/paired_eval.py $RUN/eval-$split-1024-start25.json $RUN/eval-$split-1024-start25-forget.json > /tmp/paired-$LABEL-$split.json
  python3 -c "
import json; d=json.load(open('$RUN/eval-$split-1024-start25-forget.json')); d['run']='$LABEL'
open('benchmarks/results/continuous/hcv-s14-eval-forget.jsonl','a').write(json.dumps(d)+'\n')
p=json.load(open('/tmp/paired-$LABEL-$split.json')); p['run']='$LABEL'; p['split']='$split'
open('benchmarks/results/continuous/hcv-s14-paired-forget.jsonl','a').write(json.dumps(p)+'\n')
f=lambda k: f'{p[k]:+.2f}±{p[k+\"_se\"]:.2f}'
print('$LABEL', '$split', 'ep0', f('return_episode_0'), 'ep1', f('return_episode_1'), 'ep2', f('return_episode_2'), 'gain', f('episode_gain'), 'start', f('start_episode_gain'), '$(( $(date +%s) - start ))s', flush=True)"
done
