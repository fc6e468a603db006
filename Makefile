# Two commands on a fresh machine: `make train` and `make test`. Both create .venv themselves.
# `make train` installs only what the default job needs; `make test` adds the test and optional extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch + icrl and its required dependencies; then the extras the test suite and the examples use
BASE_STAMP := $(VENV)/.icrl-base
TEST_STAMP := $(VENV)/.icrl-test
TEST_EXTRAS := dev,popgym,mujoco,metaworld,wandb,minigrid,yaml,minari

.PHONY: setup setup-test train test test-slow faults lint bench clean

# A changed pyproject.toml or Makefile re-runs the install lines (both stamps depend on them).
$(BASE_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: this version resolves to the local CPU wheel (others pull CUDA packages)
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e .
	touch $(BASE_STAMP)

# popgym (the POPGym suite, tests/envs/test_popgym.py) needs only numpy and gymnasium; mujoco (a ~10 MB
# wheel, tests/envs/test_half_cheetah_vel.py) runs icrl/HalfCheetahVel-v0; metaworld (adds only scipy;
# same mujoco pin) lets tests/envs/test_metaworld_ml1.py run instead of skipping; wandb lets
# tests/train/test_wandb.py drive the real library (offline: nothing is sent); minigrid runs
# examples/minigrid_images.py in tests/test_examples.py; yaml reads `icrl train --config FILE.yaml`;
# minari (with h5py) lets tests/test_datasets.py import a local Minari dataset instead of skipping
$(TEST_STAMP): $(BASE_STAMP)
	$(PY) -m pip install -e ".[$(TEST_EXTRAS)]"
	touch $(TEST_STAMP)

setup: $(BASE_STAMP)

setup-test: $(TEST_STAMP)

train: setup
	$(VENV)/bin/icrl train --preset tmaze-quick

test: setup-test
	$(PY) -m pytest -m "not slow" -q

test-slow: setup-test
	$(PY) -m pytest -m slow -q

# the fault suite (tests/faults, slow probes included) as a table: probe, expected, observed
faults: setup-test
	$(PY) benchmarks/faults.py

lint: setup-test
	$(VENV)/bin/ruff check icrl tests benchmarks examples

bench: setup
	$(VENV)/bin/icrl bench --preset bench-s

clean:
	rm -rf $(VENV) runs .pytest_cache
