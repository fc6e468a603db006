#!/bin/bash
# GPU checks on a lent device machine (its image has torch; no network): the CUDA tests, the
# HalfCheetahVel learner's throughput, and a short HalfCheetahVel training run on the GPU.
# Needs, in .whl/ (carried to the machine), Python 3.12 manylinux wheels of what its image lacks: gymnasium
# 1.4.0, farama-notifications, tyro 1.0.17, docstring-parser, typeguard, shtab, mujoco 3.3.0, glfw, pyopengl
# (`bash benchmarks/gpu_wheels.sh` fetches them here).
# Switches: SKIP_TESTS=1, SKIP_BENCH=1, TRAIN_SECONDS (default 150).
# Writes its logs to $OUT (default /tmp/gpu_check).
set -u
OUT=${OUT:-/tmp/gpu_check}
source benchmarks/gpu_setup.sh  # wheels, PYTHONPATH, env, $OUT/machine.txt
cat "$OUT/machine.txt"
python3 -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, 'gymnasium', gymnasium.__version__, 'mujoco', mujoco.__version__)" | tee -a "$OUT/machine.txt"

[ -n "${SKIP_TESTS:-}" ] || timeout 240 python3 -m pytest -p no:cacheprovider -q tests/gpu "tests/agent/test_continuous_learning.py::test_learns_on_cuda" 2>&1 | tee "$OUT/pytest.log"

HCV="--set model.context_len=16 --set replay.batch_size=16 --set model.critic_hidden=[256,256] --set model.actor_hidden=[256,256] --set model.encoder_hidden=[256] --set model.d_model=128 --set agent.bc_weight=0 --set agent.n_step=3"
[ -n "${SKIP_BENCH:-}" ] || for precision in float32 bfloat16; do
  timeout 90 python3 -m icrl bench --preset half-cheetah-vel --device cuda --updates 100 --rollout-steps 100 $HCV --set model.precision=$precision 2>&1 | tee -a "$OUT/bench-hcv.jsonl"
done

# HalfCheetahVel with a 16-step window and SAC-sized heads (RESULTS.md, GPU section), on the GPU.
ARGS="--preset half-cheetah-vel --model.context-len 16 --replay.batch-size 16 --model.critic-hidden 256 256 --model.actor-hidden 256 256 --model.encoder-hidden 256 --model.d-model 128 --updates-per-collect 400 --total-env-steps 150000 --eval-every 2000 --no-progress --agent.bc-weight 0 --agent.n-step 3"
rm -rf /tmp/hcv-gpu
timeout ${TRAIN_SECONDS:-150} python3 -m icrl train $ARGS --device cuda --threads 4 --seed 0 --run-dir /tmp/hcv-gpu 2>&1 | tail -20 | tee "$OUT/train-hcv.log"
cp /tmp/hcv-gpu/metrics.jsonl "$OUT/train-hcv-metrics.jsonl" 2>/dev/null
exit 0
