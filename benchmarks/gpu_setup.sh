# Sourced by the GPU scripts (gpu_check.sh, gpu_async.sh, gpu_hcv_seeds.sh) after they set OUT: installs
# the carried wheels in .whl/ (fetched here by benchmarks/gpu_wheels.sh) into /tmp/site (SKIP_WHEELS=1
# skips it: a local try), puts them and the checkout on PYTHONPATH, stops at once if a module the runs
# need cannot be imported (rather than in the middle of the device time), and records the GPU in
# $OUT/machine.txt.
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 MUJOCO_GL=disable OMP_NUM_THREADS=2  # no rendering; the image has no libEGL
python3 -c "import gymnasium, tyro, mujoco, icrl.cli" > "$OUT/imports.log" 2>&1 \
  || { cat "$OUT/imports.log"; echo "missing wheels: run benchmarks/gpu_wheels.sh here, carry .whl"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/machine.txt" 2>&1
