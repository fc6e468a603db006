#!/bin/bash
# Session 16, exploratory (fixed at 06:55 UTC before any averaged checkpoint was scored; not part of the
# issue-6 verdict, which judge.py's late-checkpoint rule gives): the uniform average of a run's last six kept
# checkpoints' weights (125k ... 140.4k updates), `icrl average RUN --last 6`, scored
#   1. on validation, the training velocities exactly as icrl select scores candidates (128 trials, seed 2024;
#      the selected checkpoint is replayed the same way first, as a check that the setting matches select.json),
#   2. at 1,024 trials (eval seed 5, --first-steps 25) on test and training velocities, like the selected ones.
# Usage: average.sh RUN LABEL   -> RUN/eval-*-avg.json; rows appended to hcv-s16-avg.jsonl
cd "$(dirname "$0")/../.."  # the repository root
RUN=$1; LABEL=$2
d=/tmp/s16-avg-$LABEL; rm -rf $d; mkdir -p $d && cp $RUN/config.json $d/ && ln -sfn $PWD/$RUN/checkpoints $d/checkpoints
ev() { OMP_NUM_THREADS=1 nice -n 5 .venv/bin/icrl eval $d "$@" > /dev/null 2>> $RUN/avg.err; }
.venv/bin/icrl average $RUN --last 6
ev --checkpoint best --trials 128 --seed 2024 --env.split train && cp $d/eval-best.json $RUN/eval-valid-128-best.json
ev --checkpoint avg --trials 128 --seed 2024 --env.split train && cp $d/eval-avg.json $RUN/eval-valid-128-avg.json
for split in test train; do
  ev --checkpoint avg --trials 1024 --seed 5 --env.split $split --first-steps 25 && cp $d/eval-avg.json $RUN/eval-$split-1024-start25-avg.json
done
python3 -c "
import json
for name in ('valid-128-best', 'valid-128-avg', 'test-1024-start25-avg', 'train-1024-start25-avg'):
    d = json.load(open('$RUN/eval-' + name + '.json')); d['run'] = '$LABEL'; d['file'] = name
    open('benchmarks/results/continuous/hcv-s16-avg.jsonl', 'a').write(json.dumps(d) + '\n')
    f = lambda k: f'{d[k]:+.2f}±{d[k+\"_se\"]:.2f}'
    print('$LABEL', name, d['updates'], [round(d[f'eval/return_episode_{i}'], 1) for i in range(3)], 'ret', f('eval/return'), 'gain', f('eval/episode_gain'), flush=True)"
