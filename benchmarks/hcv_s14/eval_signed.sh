#!/bin/bash
# Exploratory signed-target run: 256-trial evals (seed 5, --first-steps 25), plain and memory-cleared, paired
cd "$(dirname "$0")/../.."  # the repository root
RUN=runs/hcv-s14/tf-w8-signed-s0
OMP_NUM_THREADS=1 .venv/bin/icrl eval $RUN --trials 256 --seed 5 --first-steps 25 > /dev/null 2> $RUN/eval.err
cp $RUN/eval.json $RUN/eval-256-start25.json
OMP_NUM_THREADS=1 .venv/bin/icrl eval $RUN --trials 256 --seed 5 --first-steps 25 --forget-episodes > /dev/null 2> $RUN/eval-forget.err
cp $RUN/eval-forget.json $RUN/eval-256-start25-forget.json
.venv/bin/icrl compare $RUN/eval-256-start25.json $RUN/eval-256-start25-forget.json > $RUN/paired-forget.json
python3 -c "
import json
for src in ('$RUN/eval-256-start25.json', '$RUN/eval-256-start25-forget.json'):
    d=json.load(open(src)); d['run']='tf-w8-signed-s0'
    open('benchmarks/results/continuous/hcv-s14-signed-eval.jsonl','a').write(json.dumps(d)+'\n')
p=json.load(open('$RUN/paired-forget.json')); p['run']='tf-w8-signed-s0'
open('benchmarks/results/continuous/hcv-s14-signed-paired.jsonl','a').write(json.dumps(p)+'\n')
d=json.load(open('$RUN/eval-256-start25.json'))
f=lambda p,k: f'{p[k]:+.2f}±{p[k+\"_se\"]:.2f}'
print('signed', d['updates'], [round(d[f'eval/return_episode_{i}'],1) for i in range(3)], 'gain', f(d,'eval/episode_gain'), 'start gain', f(d,'eval/start_gain'), '| memory share ep2', f(p,'return_episode_1'), 'ep3', f(p,'return_episode_2'), 'start ep3', f(p,'start_return_episode_2'), flush=True)"
