#!/bin/bash
# Session 19: stage kept checkpoints for benchmarks/hcv_s19/device_eval.sh, which evaluates them on a lent
# GPU machine's CPU cores. Copies each RUN's config.json and, for each checkpoint, only what `icrl eval`
# reads (agent.safetensors, state.json: ~4.3 MB; the optimizer's 6 MB stay here) into .carry/ (ignored by
# git, carried with `carry: [".whl", ".carry"]`), and writes the job list .carry/jobs.txt, one
# "RUN UPDATES SPLIT FORGET" per line: every plain evaluation first, then the memory ablations.
#   benchmarks/hcv_s19/stage.sh "runs/hcv-s19/tf-w8-s3 runs/hcv-s19/tf-w8-s4" "125000 130000" [CHECK]
# CHECK (optional) adds "RUN UPDATES SPLIT 0", one plain evaluation already made here, to compare.
set -eu
cd "$(dirname "$0")/../.."  # the repository root
RUNS=$1; UPDATES=$2; CHECK=${3:-}
rm -rf .carry && mkdir -p .carry
copy() {  # RUN UPDATES
  local ckpt; ckpt=$1/checkpoints/ckpt_$(printf %09d "$2")
  mkdir -p ".carry/$ckpt" && cp "$1/config.json" ".carry/$1/" && cp "$ckpt/agent.safetensors" "$ckpt/state.json" ".carry/$ckpt/"
}
for forget in 0 1; do
  for run in $RUNS; do
    for u in $UPDATES; do
      [ $forget = 0 ] && copy "$run" "$u"
      for split in test train; do echo "$run $u $split $forget" >> .carry/jobs.txt; done
    done
  done
done
if [ -n "$CHECK" ]; then
  set -- $CHECK; copy "$1" "$2"; echo "$CHECK" >> .carry/jobs.txt
fi
du -sh .carry; wc -l < .carry/jobs.txt
