#!/bin/bash
# Fetch, on this machine, the wheels a lent GPU machine lacks (its image has torch, numpy, rich, tqdm,
# safetensors, tensorboard, pytest, absl-py, etils, imageio ...; it cannot reach a registry) into .whl/,
# which is git-ignored and travels with `carry: [".whl"]`; benchmarks/gpu_setup.sh installs them there.
# Python 3.12 manylinux builds, no dependencies resolved: this list is the closure that is needed (mujoco
# imports glfw and PyOpenGL: without them a run stops at that import).
set -eu
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  gymnasium==1.4.0 farama-notifications==0.0.6 tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1 \
  shtab==1.13.0 mujoco==3.3.0 glfw==2.11.0 PyOpenGL==3.1.10
ls .whl
