#!/bin/bash
# Session 19, on a lent GPU machine: the 1,024-trial evaluations (eval seed 5, --first-steps 25, the run's
# own 8 envs, on the CPU with one torch thread each) listed in .carry/jobs.txt by benchmarks/hcv_s19/stage.sh,
# PARALLEL (16) at a time on its 16 CPU cores: this machine's two cores were training the runs meanwhile.
# Files are named as benchmarks/hcv_s15/late_ckpts.sh names them here. GPU=1 also runs the CUDA tests.
#   OUT=... GPU=1 EVAL_SECONDS=330 bash benchmarks/hcv_s19/device_eval.sh   (carry .whl and .carry)
# TRIALS and PY (python3) may be set for a local try: SKIP_WHEELS=1 TRIALS=8 PY=.venv/bin/python OUT=/tmp/x ...
# Writes $OUT/evals.tar (RUN/eval-SPLIT-1024-ckptU[-forget].json), $OUT/jobs.log, $OUT/pytest.log.
set -u
OUT=${OUT:-/tmp/hcv_s19}
source benchmarks/gpu_setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ "${GPU:-0}" = 1 ]; then
  (OMP_NUM_THREADS=2 timeout "${EVAL_SECONDS:-330}" "${PY:-python3}" -m pytest -q -p no:cacheprovider tests/gpu \
    > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?" >> "$OUT/pytest.log") &
fi
one() {  # RUN UPDATES SPLIT FORGET
  local run=$1 u=$2 split=$3 forget=$4 suffix="" flag="" d
  [ "$forget" = 1 ] && suffix=-forget && flag=--forget-episodes
  d=/tmp/ev-$(basename "$run")-$u-$split-$forget; rm -rf "$d"; mkdir -p "$d" "$OUT/evals/$run"
  cp ".carry/$run/config.json" "$d/" && ln -s "$PWD/.carry/$run/checkpoints" "$d/checkpoints"
  "${PY:-python3}" -m icrl eval "$d" --checkpoint "$u" --trials "${TRIALS:-1024}" --seed 5 --env.split "$split" --first-steps 25 \
    --device cpu $flag > /dev/null 2> "$d.err" \
    && cp "$d/eval-ckpt_$(printf %09d "$u")$suffix.json" "$OUT/evals/$run/eval-$split-${TRIALS:-1024}-ckpt$u$suffix.json"
  local rc=$?  # read before any command substitution below can replace it
  echo "$run $u $split $forget rc=$rc $(date +%T) $(tail -c 300 "$d.err" | tr '\n' ' ')"
}
export -f one
export OUT
echo "start $(date +%T) on $(nproc --all) cores" > "$OUT/jobs.log"
timeout "${EVAL_SECONDS:-330}" xargs -P "${PARALLEL:-16}" -L 1 bash -c 'one "$@"' _ < .carry/jobs.txt >> "$OUT/jobs.log" 2>&1
rc=$?  # 124: EVAL_SECONDS ran out and the evaluations still running were stopped
echo "end $(date +%T) rc=$rc" >> "$OUT/jobs.log"
wait
tar -C "$OUT/evals" -cf "$OUT/evals.tar" . && rm -rf "$OUT/evals"
cat "$OUT/jobs.log"; tail -n 3 "$OUT/pytest.log" 2>/dev/null
exit 0
