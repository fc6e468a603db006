#!/bin/bash
# Usage: eval_control_s0.sh SPLIT -> 1024-trial eval (seed 5, --first-steps 25) of the seed-0 control,
# paired with session 13's seed-0 Transformer on the same trials
cd "$(dirname "$0")/../.."  # the repository root
split=$1; RUN=runs/hcv-s14/mlp-w8-s0; TF=runs/hcv-s13/tf-w8-s0
start=$(date +%s)
mkdir -p /tmp/ctl-$split && cp -r $RUN/config.json /tmp/ctl-$split/ && ln -sfn $PWD/$RUN/checkpoints /tmp/ctl-$split/checkpoints
OMP_NUM_THREADS=1 .venv/bin/icrl eval /tmp/ctl-$split --trials 1024 --seed 5 --env.split $split --first-steps 25 > /dev/null 2> $RUN/eval-$split.err
cp /tmp/ctl-$split/eval.json $RUN/eval-$split-1024-start25.json
.venv/bin/icrl compare $TF/eval-$split-1024-start25.json $RUN/eval-$split-1024-start25.json > /tmp/pc-$split.json
python3 -c "
import json
d=json.load(open('$RUN/eval-$split-1024-start25.json')); d['run']='mlp-w8-s0'
open('benchmarks/results/continuous/hcv-s14-eval-control-s0.jsonl','a').write(json.dumps(d)+'\n')
pc=json.load(open('/tmp/pc-$split.json')); pc['run']='tf-w8-s0 - mlp-w8-s0'; pc['split']='$split'
open('benchmarks/results/continuous/hcv-s14-paired-control-s0.jsonl','a').write(json.dumps(pc)+'\n')
f=lambda p,k: f'{p[k]:+.2f}±{p[k+\"_se\"]:.2f}'
print('control s0 $split', d['updates'], [round(d[f'eval/return_episode_{i}'],1) for i in range(3)], 'ret', f(d,'eval/return'), 'gain', f(d,'eval/episode_gain'), 'start gain', f(d, 'eval/start_gain'), '| TF-control return', f(pc,'return'), 'ep gain', f(pc,'episode_gain'), 'start gain', f(pc,'start_episode_gain'), '$(( $(date +%s) - start ))s', flush=True)"
