#!/bin/bash
# Post-hoc (after the selection result): 256-trial held-out evals (seed 5) of the last six kept checkpoints
# of one run, in a private copy dir; paired later checkpoint by checkpoint with the other run.
# UPDATES (the checkpoints' update counts) and SPLIT (test) may be set to evaluate others; WEIGHTS=ema
# (session 17) evaluates each checkpoint's moving average of the weights instead (files end in -ema.json).
# Session 18: TRIALS (256) sets the trial count (files eval-SPLIT-TRIALS-ckptU...), FIRST_STEPS=K adds
# `--first-steps K`, FORGET=1 plays the memory ablation `--forget-episodes` (files end in -forget.json).
cd "$(dirname "$0")/../.."  # the repository root
RUN=$1; LABEL=$2; SPLIT=${SPLIT:-test}; WEIGHTS=${WEIGHTS:-live}; TRIALS=${TRIALS:-256}
SUFFIX=$([ "${FORGET:-0}" = 1 ] && echo -forget)$([ "$WEIGHTS" = ema ] && echo -ema)
EXTRA="${FIRST_STEPS:+--first-steps $FIRST_STEPS} $([ "${FORGET:-0}" = 1 ] && echo --forget-episodes)"
d=/tmp/s15-late-$LABEL; rm -rf $d; mkdir -p $d && cp $RUN/config.json $d/ && ln -sfn $PWD/$RUN/checkpoints $d/checkpoints
for u in ${UPDATES:-125000 130000 135000 139000 140000 140400}; do
  OMP_NUM_THREADS=1 .venv/bin/icrl eval $d --checkpoint $u --trials $TRIALS --seed 5 --env.split $SPLIT \
    --weights $WEIGHTS $EXTRA > /dev/null 2>> $RUN/late.err
  cp $d/eval-ckpt_000$u$SUFFIX.json $RUN/eval-$SPLIT-$TRIALS-ckpt$u$SUFFIX.json
done
echo "$LABEL done $(date)"
