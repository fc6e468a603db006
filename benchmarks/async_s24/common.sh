# Sourced by run.sh, run2.sh and run3.sh: the output folder and `train NAME ARGS...`, which runs `icrl train
# ARGS` into $OUT/NAME and writes its wall-clock seconds to $OUT/NAME.time and its output to $OUT/NAME.log.
OUT=runs/s24/async
mkdir -p "$OUT"
REACH=(--preset metaworld-reach --seed 0 --total-env-steps 20000 --eval-every 1000)
train() {
  local name=$1; shift
  rm -rf "${OUT:?}/$name"
  /usr/bin/time -f "%e" -o "$OUT/$name.time" .venv/bin/icrl train "$@" --run-dir "$OUT/$name" --no-progress \
    > "$OUT/$name.log" 2>&1
}
