#!/bin/bash
# Usage: eval_best.sh RUN LABEL SPLIT [--forget-episodes] -> 1024-trial eval (seed 5, --first-steps 25) of
# RUN's checkpoints/best (chosen by icrl select on training velocities), in a private copy dir (so that
# evaluations can run side by side), saved as RUN/eval-SPLIT-1024-start25-best[-forget].json and appended to
# benchmarks/results/continuous/hcv-$TAG-eval-best.jsonl (TAG: the session, s15 unless set)
cd "$(dirname "$0")/../.."  # the repository root
RUN=$1; LABEL=$2; split=$3; extra=$4; TAG=${TAG:-s15}
tag=best; [ "$extra" = "--forget-episodes" ] && tag=best-forget
start=$(date +%s)
d=/tmp/$TAG-$LABEL-$split-$tag; rm -rf $d; mkdir -p $d && cp $RUN/config.json $d/ && ln -sfn $PWD/$RUN/checkpoints $d/checkpoints
OMP_NUM_THREADS=1 .venv/bin/icrl eval $d --checkpoint best --trials 1024 --seed 5 --env.split $split --first-steps 25 $extra > /dev/null 2> $RUN/eval-$split-$tag.err
out=$d/eval-best.json; [ "$extra" = "--forget-episodes" ] && out=$d/eval-best-forget.json
cp $out $RUN/eval-$split-1024-start25-$tag.json
python3 -c "
import json; d=json.load(open('$RUN/eval-$split-1024-start25-$tag.json')); d['run']='$LABEL'; d['split']='$split'
open('benchmarks/results/continuous/hcv-$TAG-eval-best.jsonl','a').write(json.dumps(d)+'\n')
f=lambda k: f'{d[k]:+.2f}±{d[k+\"_se\"]:.2f}'
print('$LABEL', '$split', '$tag', d['updates'], [round(d[f'eval/return_episode_{i}'],1) for i in range(3)], 'ret', f('eval/return'), 'gain', f('eval/episode_gain'), 'start gain', f('eval/start_gain'), '$(( $(date +%s) - start ))s', flush=True)"
