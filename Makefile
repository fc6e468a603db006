# Two commands on a fresh machine: `make train` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.icrl-installed

.PHONY: setup train test test-slow faults lint bench clean

$(STAMP): pyproject.toml Makefile  # a changed install line re-runs setup
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: this version resolves to the local CPU wheel (others pull CUDA packages)
	$(PY) -m pip install torch==2.13.0
	# popgym (the POPGym suite, tests/envs/test_popgym.py) needs only numpy and gymnasium; mujoco (a
	# ~10 MB wheel, tests/envs/test_half_cheetah_vel.py) runs icrl/HalfCheetahVel-v0; metaworld (adds only
	# scipy; same mujoco pin) lets tests/envs/test_metaworld_ml1.py run instead of skipping; wandb lets
	# tests/train/test_wandb.py drive the real library (offline: nothing is sent)
	$(PY) -m pip install -e ".[dev,popgym,mujoco,metaworld,wandb]"
	touch $(STAMP)

setup: $(STAMP)

train: setup
	$(VENV)/bin/icrl train --preset tmaze-quick

test: setup
	$(PY) -m pytest -m "not slow" -q

test-slow: setup
	$(PY) -m pytest -m slow -q

# the fault suite (tests/faults, slow probes included) as a table: probe, expected, observed
faults: setup
	$(PY) benchmarks/faults.py

lint: setup
	$(VENV)/bin/ruff check icrl tests benchmarks

bench: setup
	$(VENV)/bin/icrl bench --preset bench-s

clean:
	rm -rf $(VENV) runs .pytest_cache
